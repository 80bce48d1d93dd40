"""``retrieval-mcp search`` previews: the passage around the query's match, as the MCP text shows.

Invariant: a hit's preview in the CLI text view is the text the Searcher trims around the
query's matching sentences (the same trimming, and the same layout, as the MCP text content),
not the chunk's first characters; wherever the matching sentence sits in a long chunk, the
preview shows it. Real store, bundled MiniLM, the CLI's main() in-process.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from server.cli import main
from server.hit_preview import PREVIEW_CHARS, hit_text, preview_budget
from server.ingest.runner import run_ingest
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import assemble
from server.retrieval.types import Chunk, SearchRequest
from server.settings import Settings

FILLER = [
    f"Paragraph {n} of the handbook describes routine office matters in general terms."
    for n in range(30)
]
MATCHES = {  # the query word -> where its sentence sits among the filler sentences
    "narwhal": 29,
    "pangolin": 15,
    "axolotl": 0,
}


def _chunk(word: str, position: int) -> Chunk:
    sentences = [*FILLER]
    sentences.insert(position, f"The {word} enclosure is cleaned every Thursday at noon.")
    return Chunk(tenant="t1", doc_id=word, source=f"{word}.md", text=" ".join(sentences))


@pytest.fixture(autouse=True)
def _no_reranker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRIEVAL_RERANKER_MODEL", "none")


@pytest.mark.slow
def test_the_preview_shows_the_matching_sentence_wherever_it_is(
    tmp_path: Path, embedder: DenseEmbedder, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "store"
    store = EdgeStore(path)
    try:
        retrieval = assemble(Settings(reranker_model="none", store_path=path), store, embedder)
        retrieval.indexer.index("docs", [_chunk(w, p) for w, p in MATCHES.items()])
        # the MCP path's trimmed text for the same search and budget
        same_budget = {
            word: retrieval.searcher.search(
                SearchRequest(
                    f"{word} enclosure", "docs", "t1", top_k=1, max_chars=preview_budget(1)
                )
            ).hits[0]
            for word in MATCHES
        }
    finally:
        store.close()
    assert all(len(c.text) > 5 * PREVIEW_CHARS for c in (_chunk(w, p) for w, p in MATCHES.items()))
    for word, position in MATCHES.items():
        query = f"{word} enclosure"
        argv = ["search", query, "--tenant", "t1", "--store", str(path), "--top-k", "1"]
        assert main(argv) == 0
        out = capsys.readouterr().out.splitlines()
        rank = next(i for i, line in enumerate(out) if line.startswith(" 1. "))
        assert f"{word}.md#0" in out[rank]
        preview = out[rank + 1]
        assert f"The {word} enclosure is cleaned every Thursday at noon." in preview, (
            position,
            preview,
        )
        assert len(preview.strip()) <= PREVIEW_CHARS
        assert preview == hit_text(same_budget[word].text, code=False)
        assert same_budget[word].truncated and "(trimmed)" in out[rank]
        # the notes speak to a CLI user: previews, and --json for the whole texts (not the
        # MCP tool get_chunk, nor a max_chars the CLI has no option for)
        notes = [line for line in out if line.startswith("  note:") and "rerank" not in line]
        assert notes == ["  note: 1 of 1 previews trimmed; --json prints whole texts"], notes


def test_the_text_view_says_when_an_index_may_be_stale(
    tmp_path: Path, embedder: DenseEmbedder, capsys: pytest.CaptureFixture[str]
) -> None:
    """As the MCP text content does: a root that is not known fresh is named under the hits
    (it was only in --json)."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "otters.md").write_text("# Otters\n\nOtters hold hands while they sleep.\n")
    path = tmp_path / "store"
    store = EdgeStore(path)
    try:
        retrieval = assemble(Settings(reranker_model="none", store_path=path), store, embedder)
        run_ingest(retrieval.indexer, [folder], domain="docs", tenant="t1", progress=False)
    finally:
        store.close()
    assert main(["search", "otters sleep", "--tenant", "t1", "--store", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    real = folder.resolve()
    unknown = "unknown (not watched, not in a git work tree: edits since the sync are not seen)"
    assert f"  note: index of {real} (docs): {unknown}, synced" in "\n".join(out), out
