"""An edited file re-embeds only the chunks its edit changed.

Re-ingesting a changed file embedded every chunk again: one edited paragraph of a long document
(or one cell of a notebook, or one function of a module) cost the whole file's embedding, on
two cores seconds per file under ``watch``. Invariant: after an edit, every chunk's stored
vectors equal those of ingesting the edited file into an empty store; only chunks whose
embedded text (title and text) is new are embedded; the others keep their stored vectors.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import MakeRetrieval

from server.ingest.runner import run_ingest
from server.retrieval.analysis import dense_text
from server.retrieval.factory import Retrieval
from server.retrieval.store import point_id
from server.settings import Domain

PARAGRAPHS = [
    f"Paragraph {i} explains step {i} of rotating the {word} credentials before the audit."
    + " It names the owner, the deadline and the rollback." * (2 + i % 3)
    for i, word in enumerate(["vault", "proxy", "mailer", "ledger", "backup", "cache", "queue"])
]


def _document(paragraphs: list[str]) -> str:
    # each section is headed by its paragraph's own subject, so sections keep their titles
    sections = [f"## {' '.join(text.split()[9:11])}\n\n{text}" for text in paragraphs]
    return "# Runbook\n\n" + "\n\n".join(sections) + "\n"


EDITS: dict[str, Callable[[list[str]], list[str]]] = {
    "one paragraph changed": lambda ps: [*ps[:3], ps[3] + " Edited.", *ps[4:]],
    "a section inserted": lambda ps: [
        *ps[:2],
        "Paragraph 9 explains step 9 of opening the firewall port before the audit.",
        *ps[2:],
    ],
    "a section removed": lambda ps: [*ps[:1], *ps[2:]],
    "nothing in common": lambda ps: [p.replace("the", "a") for p in ps],
}


def _vectors(
    retrieval: Retrieval, source: Path
) -> dict[int, tuple[list[float], list[list[float]]]]:
    collection = retrieval.settings.domains[Domain.DOCS].collection
    path = source.resolve().as_posix()
    ids = {point_id("acme", "docs", path, i): i for i in range(100)}
    found = retrieval.store.vectors(collection, "acme", list(ids))
    return {ids[v.id]: (v.dense, v.parts or []) for v in found}


def _ingest(retrieval: Retrieval, folder: Path):  # type: ignore[no-untyped-def]
    return run_ingest(retrieval.indexer, [folder], domain="docs", tenant="acme", progress=False)


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edit_embeds_only_what_it_changed(
    tmp_path: Path, make_retrieval: MakeRetrieval, edit: str
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    doc = folder / "runbook.md"
    doc.write_text(_document(PARAGRAPHS))
    edited_text = _document(EDITS[edit](PARAGRAPHS))

    kept = make_retrieval(ingest={"chunk_tokens": 64})
    _ingest(kept, folder)
    before = {(p.payload["title"], p.payload["text"]) for p in _payloads(kept)}
    embedded: list[str] = []
    encode = kept.indexer.embedder.embed_documents

    def counting(texts, *args, **kwargs):  # type: ignore[no-untyped-def]
        embedded.extend(texts)
        return encode(texts, *args, **kwargs)

    kept.indexer.embedder.embed_documents = counting  # type: ignore[method-assign]
    try:
        doc.write_text(edited_text)
        report = _ingest(kept, folder)
    finally:
        del kept.indexer.embedder.embed_documents  # back to the class's method
    after = _payloads(kept)
    unchanged = sum((p.payload["title"], p.payload["text"]) in before for p in after)
    assert report.chunks_written == len(after) and report.chunks_reused == unchanged
    assert edit != "nothing in common" or unchanged == 0
    assert edit == "nothing in common" or unchanged >= len(after) - 2
    # the chunk texts embedded are exactly the new ones (their part texts come with them)
    settings = kept.settings.domains[Domain.DOCS]
    chunk_texts = {
        dense_text(settings, p.payload["title"], p.payload["text"]): (
            (p.payload["title"], p.payload["text"]) in before
        )
        for p in after
    }
    assert {t for t, old in chunk_texts.items() if not old} <= set(embedded)
    assert not {t for t, old in chunk_texts.items() if old} & set(embedded)

    fresh = make_retrieval(ingest={"chunk_tokens": 64})
    _ingest(fresh, folder)
    got, want = _vectors(kept, doc), _vectors(fresh, doc)
    assert sorted(got) == sorted(want)
    for index, (dense, parts) in want.items():
        assert np.allclose(got[index][0], dense, atol=1e-5), index
        assert len(got[index][1]) == len(parts)
        assert np.allclose(got[index][1], parts, atol=2.0**-9), index


def _payloads(retrieval: Retrieval):  # type: ignore[no-untyped-def]
    collection = retrieval.settings.domains[Domain.DOCS].collection
    page, _ = retrieval.store.scroll(collection, "acme", limit=1000)
    return page
