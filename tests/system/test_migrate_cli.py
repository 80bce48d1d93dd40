"""``retrieval-mcp migrate``: a real ingested store moved into qdrant-client's local mode.

After the migration a server configured with ``RETRIEVAL_QDRANT_URL`` (``path:/dir`` for local
mode) answers every search with the same hits as the embedded store; an interrupted migration
continues where it stopped; a tampered target, a bad URL, an unreachable server, a missing or busy
store each give one line on stderr and exit code 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp_support import TENANTS, index_corpus, open_retrieval, server_settings
from qdrant_client import QdrantClient, models

from server.cli import main
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import assemble, open_store
from server.retrieval.qdrant_store import QdrantStore
from server.retrieval.types import SearchRequest

ROOT = Path(__file__).resolve().parents[2]
QUERIES = {
    "docs": ["how do I install the agent", "start the service", "configuration file"],
    "legal": ["termination for convenience notice", "§ 12.3", "legal department"],
    "code": ["http server request handler", "parse the configuration", "retry"],
}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory, embedder: DenseEmbedder) -> Path:
    """The two-tenant corpus of mcp_support.py in all three domains, in an embedded store."""
    path = tmp_path_factory.mktemp("migrate") / "store"
    store = EdgeStore(path)
    try:
        index_corpus(open_retrieval(store, server_settings(path), embedder))
    finally:
        store.close()
    return path


def _migrate(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "server.cli", "migrate", "--no-progress", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)


def _hits(store: EdgeStore | QdrantStore, path: Path, embedder: DenseEmbedder) -> list[object]:
    retrieval = assemble(server_settings(path), store, embedder)
    answers: list[object] = []
    for domain, queries in QUERIES.items():
        for tenant in TENANTS:
            for query in queries:
                for mode in ("hybrid", "bm25", "dense"):
                    result = retrieval.searcher.search(
                        SearchRequest(query, domain=domain, tenant=tenant, top_k=5, mode=mode)
                    )
                    answers.append((domain, tenant, query, mode, [h.id for h in result.hits]))
    return answers


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "qdrant"


@pytest.mark.slow
def test_interrupted_migration_continues_and_the_server_answers_alike(
    source: Path, target: Path, embedder: DenseEmbedder
) -> None:
    stopped = _migrate(
        "--store", str(source), "--to", f"path:{target}", "--batch", "3", "--max-batches", "2"
    )
    assert stopped.returncode == 3, stopped.stderr
    assert "incomplete" in stopped.stdout and "run the same command again" in stopped.stdout

    finished = _migrate("--store", str(source), "--to", f"path:{target}", "--batch", "3")
    assert finished.returncode == 0, finished.stderr
    lines = finished.stdout.splitlines()
    assert lines[0].startswith("docs: ") and "resumed" in lines[0]
    assert all(line.endswith("copied and verified") for line in lines)
    assert [line.split(":")[0] for line in lines] == ["docs", "legal", "code"]

    embedded = EdgeStore(source)
    try:
        expected = _hits(embedded, source, embedder)
    finally:
        embedded.close()
    settings = server_settings(source, qdrant_url=f"path:{target}")
    server = open_store(settings)  # what a server started with RETRIEVAL_QDRANT_URL opens
    try:
        assert isinstance(server, QdrantStore)
        assert _hits(server, source, embedder) == expected
    finally:
        server.close()
    assert any(hits for *_, hits in expected)  # type: ignore[misc]


@pytest.mark.slow
def test_a_tampered_target_fails_verification_in_one_line(source: Path, target: Path) -> None:
    assert _migrate("--store", str(source), "--to", f"path:{target}").returncode == 0
    client = QdrantClient(path=str(target))
    first = client.scroll("code", limit=1)[0][0].id
    client.delete("code", points_selector=models.PointIdsList(points=[first]))
    client.close()
    failed = _migrate("--store", str(source), "--to", f"path:{target}")
    assert failed.returncode == 2
    assert failed.stderr.strip().startswith("error: verification failed: collection 'code': ")
    assert len(failed.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("ftp://qdrant:6333", "unsupported Qdrant location 'ftp://qdrant:6333'"),
        ("http://127.0.0.1:1", "cannot reach Qdrant at http://127.0.0.1:1"),
        ("path:", "a local-mode target needs a folder"),
    ],
)
def test_a_bad_target_is_one_line_exit_2(
    source: Path, location: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate", "--store", str(source), "--to", location, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {message}") and "\n" not in err


def test_a_missing_store_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nothing-here"
    assert main(["migrate", "--store", str(missing), "--to", f"path:{tmp_path / 'q'}"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: no embedded store at {missing} (give --store or set RETRIEVAL_STORE_PATH)"
    )
    assert not missing.exists()  # looking did not create it


def test_a_domain_the_store_lacks_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = EdgeStore(tmp_path / "store")
    store.ensure_collection("docs", 4, {})
    store.close()
    args = ["migrate", "--store", str(tmp_path / "store"), "--to", f"path:{tmp_path / 'q'}"]
    assert main([*args, "--domain", "code"]) == 2
    assert "has no collection code" in capsys.readouterr().err


def test_a_store_in_use_is_one_line_exit_2(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = EdgeStore(source)
    try:
        code = main(["migrate", "--store", str(source), "--to", f"path:{tmp_path / 'q'}"])
    finally:
        holder.close()
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: the store at {source} is in use by pid {os.getpid()}")
    assert "\n" not in err
