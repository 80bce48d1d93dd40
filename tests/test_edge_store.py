"""Embedded store specifics: persistence, the single-opener lock, unwritable paths."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from server.errors import StoreError, StoreLockedError
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.pipeline import RetrievalPipeline
from server.retrieval.types import Chunk
from server.settings import Settings


def test_close_and_reopen_keeps_everything(tmp_path: Path, embedder: DenseEmbedder) -> None:
    settings = Settings(reranker_model="none")
    store = EdgeStore(tmp_path / "s")
    p = RetrievalPipeline(settings, store, embedder)
    p.index(
        "docs",
        [Chunk(tenant="t", doc_id="a", source="a.md", text="Persistence survives restarts.")],
    )
    store.close()

    reopened = EdgeStore(tmp_path / "s")
    try:
        p2 = RetrievalPipeline(settings, reopened, embedder)
        result = p2.search("restarts persistence", domain="docs", tenant="t")
        assert [h.doc_id for h in result.hits] == ["a"]
        assert reopened.read_meta("docs")["points"] == 1
    finally:
        reopened.close()


def test_second_process_gets_a_clear_lock_error(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path / "s")
    try:
        code = textwrap.dedent(
            f"""
            from server.errors import StoreLockedError
            from server.retrieval.edge_store import EdgeStore
            try:
                EdgeStore({str(tmp_path / "s")!r})
            except StoreLockedError as exc:
                print("LOCKED", exc)
            """
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        assert "LOCKED" in out.stdout
        assert f"pid {os.getpid()}" in out.stdout
        assert "RETRIEVAL_STORE_PATH" in out.stdout
    finally:
        store.close()
    # released on close: a new opener succeeds
    EdgeStore(tmp_path / "s").close()


def test_same_process_second_open_is_refused(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path / "s")
    try:
        with pytest.raises(StoreLockedError):
            EdgeStore(tmp_path / "s")
    finally:
        store.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_path_is_a_store_error(tmp_path: Path) -> None:
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    with pytest.raises(StoreError, match="not writable"):
        EdgeStore(locked / "store")


def test_path_under_a_file_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="not writable"):
        EdgeStore(blocker / "store")


def test_missing_collection_reads_as_empty(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path / "s")
    try:
        assert not store.has_collection("docs")
        assert store.count("docs", "t") == 0
        with pytest.raises(StoreError, match="does not exist"):
            store.retrieve("docs", "t", ["x"])
    finally:
        store.close()
