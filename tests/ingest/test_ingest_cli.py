"""The ingest / delete commands as a user runs them, including a kill -9 in the middle."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import unicodedata
from pathlib import Path

import pytest

from server.cli import main
from server.ingest.manifest import load_manifest
from server.ingest.runner import run_ingest
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import assemble
from server.retrieval.length_stats import tenant_lengths
from server.settings import Domain, IngestSettings, Settings

REPO = Path(__file__).resolve().parents[2]
FILES = 40


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", **extra}


def _make_corpus(folder: Path, files: int) -> None:
    folder.mkdir()
    for i in range(files):
        body = "\n\n".join(f"Paragraph {j} of file {i} about topic {i * 7 + j}." for j in range(6))
        (folder / f"note_{i:03d}.md").write_text(f"# Note {i}\n\n{body}\n")


@pytest.mark.slow
def test_killed_ingest_leaves_a_queryable_store_and_rerun_completes(
    tmp_path: Path, embedder: DenseEmbedder
) -> None:
    corpus, store_dir = tmp_path / "notes", tmp_path / "store"
    _make_corpus(corpus, FILES)
    cmd = [sys.executable, "-m", "server.cli", "ingest", str(corpus), "--domain", "docs",
           "--tenant", "acme", "--store", str(store_dir)]  # fmt: skip
    env = _env(RETRIEVAL_INGEST__BATCH_CHUNKS="8", RETRIEVAL_INGEST__CHUNK_TOKENS="24")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = bytearray()

    def read() -> None:
        assert proc.stderr is not None
        while chunk := proc.stderr.read1(4096):  # type: ignore[attr-defined]
            seen.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 240
    while b"chunks=" not in seen and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "ingest finished before it could be interrupted"
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    reader.join(timeout=5)

    store = EdgeStore(store_dir)
    try:
        partial = store.count("docs", "acme")
        assert partial > 0
        assert store.count("docs", "acme") == partial  # queryable after the kill
        states = load_manifest(store, "docs", "acme")
        assert 0 < len(states) < FILES
    finally:
        store.close()

    # Re-run the same job (in-process, same settings) over the interrupted store.
    settings = Settings(
        store_path=store_dir,
        reranker_model="none",
        ingest=IngestSettings(batch_chunks=8, chunk_tokens=24),
    )
    store = EdgeStore(store_dir)
    try:
        report = run_ingest(
            assemble(settings, store, embedder, None).indexer,
            [corpus],
            domain="docs",
            tenant="acme",
            progress=False,
        )
        assert (
            report.unchanged > 0
            and report.unchanged + len(report.added) + len(report.updated) == FILES
        )
        states = load_manifest(store, "docs", "acme")
        assert len(states) == FILES
        total = 0
        for state in states.values():
            (digest,) = state.hashes
            assert state.is_complete(digest)
            total += state.points
        assert store.count("docs", "acme") == total  # no duplicates, no leftovers
        # BM25 length statistics are exact: each batch carries its own share of them, and a
        # store the kill left between a batch and its statistics is recounted on the re-run.
        stats = tenant_lengths(store.read_meta("docs"), "acme")
        lengths = [p.payload["bm25_len"] for p in store.scroll("docs", "acme", limit=10_000)[0]]
        assert (stats.points, stats.total_len) == (len(lengths), float(sum(lengths)))
    finally:
        store.close()


def test_cli_errors_and_delete(tmp_path: Path, capsys: object) -> None:
    store = str(tmp_path / "store")
    code = main(["ingest", str(tmp_path / "missing"), "--domain", "docs", "--tenant", "t",
                 "--store", store])  # fmt: skip
    assert code == 2
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nalpha")
    assert main(["ingest", str(folder), "--domain", "docs", "--tenant", "t", "--store", store,
                 "--no-progress"]) == 0  # fmt: skip
    assert main(["delete", "--tenant", "t", "--source", str(folder / "zzz.md"), "--store",
                 store]) == 2  # fmt: skip
    assert main(["delete", "--tenant", "t", "--source", str(folder / "a.md"), "--store",
                 store]) == 0  # fmt: skip
    out = capsys.readouterr()  # type: ignore[attr-defined]
    assert "error: no such file or directory" in out.err
    assert "1 added" in out.out and "deleted 1 chunks" in out.out


COMPOSED_NAMES = ["Büro", "café", "Ångström", "naïve résumé"]


@pytest.mark.parametrize("name", COMPOSED_NAMES)
def test_delete_finds_a_decomposed_path_by_the_name_as_typed(
    tmp_path: Path, embedder: DenseEmbedder, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """macOS writes names decomposed (``Bu\\u0308ro``); users type them composed. Search and
    list filters matched both forms, but ``delete --source`` and remove_source(source=...)
    compared the stored path byte for byte and found nothing. Invariant: a path given in
    either Unicode form names the same stored files in every command and tool."""
    from server.ingest.removal import remove_sources

    nfd = unicodedata.normalize("NFD", name)
    folder = tmp_path / "docs" / nfd
    folder.mkdir(parents=True)
    for i in range(2):
        (folder / f"{nfd}-{i}.md").write_text(f"# Note {i}\n\nPayroll runs on the {i}th.\n")
    store = ["--store", str(tmp_path / "store")]
    args = ["--domain", "docs", "--tenant", "t", *store, "--no-progress"]
    assert main(["ingest", str(tmp_path / "docs"), *args]) == 0
    typed = tmp_path / "docs" / unicodedata.normalize("NFC", name)
    # the write tool's removal of one file, by its composed name
    settings = Settings(store_path=tmp_path / "store", reranker_model="none")
    edge = EdgeStore(settings.store_path)
    try:
        indexer = assemble(settings, edge, embedder).indexer
        result = remove_sources(
            indexer, tenant="t", domain=Domain.DOCS, source=f"{typed}/{name}-0.md"
        )
        assert (result.sources_removed, result.chunks_removed) == (1, 1), result
    finally:
        edge.close()
    # the CLI's removal of the folder, by its composed name
    capsys.readouterr()
    assert main(["delete", "--tenant", "t", "--source", str(typed), *store]) == 0
    assert "deleted 1 chunks" in capsys.readouterr().out
