"""A re-run re-chunks a file another chunking cut, though its bytes are the same.

Field report: after an upgrade whose legal chunker found sections it had missed, ``ingest``
of the same folder said every file was unchanged (the manifest compared file hashes only), so
the index kept the old chunks until each file was edited. Invariant: a file is skipped only
when its stored chunks were cut from the same bytes by the same chunking (chunker version and
chunk budget); points written before the chunking was recorded count as version 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.cli import main
from server.ingest import chunking
from server.ingest.manifest import SourceState
from server.settings import Domain


def ingest(folder: Path, store: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    argv = ["ingest", str(folder), "--domain", "docs", "--tenant", "t", "--json"]
    assert main([*argv, "--no-progress", "--store", str(store)]) == 0
    result: dict[str, object] = json.loads(capsys.readouterr().out)
    return result


def test_a_new_chunker_version_or_budget_rechunks_unchanged_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "vpn.md").write_text("# VPN\n\n" + "Connect with the client first. " * 40)
    store = tmp_path / "store"
    first = ingest(folder, store, capsys)
    assert first["added"] == [str(folder / "vpn.md")]
    assert ingest(folder, store, capsys)["unchanged"] == 1

    monkeypatch.setitem(chunking.CHUNKER_VERSIONS, (Domain.DOCS, "markdown"), 2)
    assert ingest(folder, store, capsys)["updated"] == [str(folder / "vpn.md")]
    assert ingest(folder, store, capsys)["unchanged"] == 1

    monkeypatch.setenv("RETRIEVAL_INGEST__CHUNK_TOKENS", "64")
    again = ingest(folder, store, capsys)
    assert again["updated"] == [str(folder / "vpn.md")]
    assert again["chunks_written"] > first["chunks_written"]  # type: ignore[operator]
    assert ingest(folder, store, capsys)["unchanged"] == 1


def test_points_without_a_recorded_chunking_count_as_version_one() -> None:
    state = SourceState(hashes={"h"}, chunk_counts={2}, indexes={0, 1}, chunkings={""}, points=2)
    assert state.is_complete("h")  # notes and callers that give no chunking
    assert state.is_complete("h", "docs/v1/256+0", unrecorded_ok=True)
    assert not state.is_complete("h", "legal/v2/256+0", unrecorded_ok=False)
    mixed = SourceState(
        hashes={"h"}, chunk_counts={2}, indexes={0, 1}, chunkings={"", "x"}, points=2
    )
    assert not mixed.is_complete("h", "x")  # a run that stopped halfway through a re-chunk
