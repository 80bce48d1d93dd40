"""Incremental ingest over a real Qdrant Edge store: unchanged, edited, pruned, deleted, skipped."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from conftest import MakeRetrieval
from ingest_samples import CONTRACT, MARKDOWN, PYTHON_MODULE, make_pdf

from server.ingest.cli import format_report
from server.ingest.manifest import load_manifest
from server.ingest.runner import delete_sources, run_ingest
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import Retrieval
from server.retrieval.freshness import root_freshness
from server.retrieval.length_stats import tenant_lengths
from server.retrieval.store import StoredPoint
from server.retrieval.types import SearchRequest
from server.settings import Domain, IngestSettings


class CountingStore(EdgeStore):
    """The real Edge store, counting the points written (a spy, not a stand-in)."""

    upserted = 0

    def upsert(
        self,
        name: str,
        points: Sequence[StoredPoint],
        meta_deltas: Mapping[str, float] | None = None,
    ) -> None:
        self.upserted += len(points)
        super().upsert(name, points, meta_deltas)


@pytest.fixture
def retrieval(make_retrieval: MakeRetrieval) -> Retrieval:
    """Small chunks, so short test files make several."""
    return make_retrieval(
        CountingStore, ingest=IngestSettings(chunk_tokens=64, max_file_bytes=100_000)
    )


def _points(retrieval: Retrieval, domain: str, tenant: str) -> list[dict[str, object]]:
    collection = retrieval.settings.domains[Domain(domain)].collection
    out: list[dict[str, object]] = []
    offset = None
    while True:
        page, offset = retrieval.store.scroll(collection, tenant, limit=1000, offset=offset)
        out.extend(p.payload for p in page)
        if offset is None:
            return out


def _ingest(retrieval: Retrieval, path: Path, domain: str = "docs", **kw: object):  # type: ignore[no-untyped-def]
    return run_ingest(retrieval.indexer, [path], domain=domain, tenant=kw.pop("tenant", "acme"),
                      progress=False, **kw)  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.slow
def test_reingest_unchanged_writes_nothing_and_edits_replace_all_chunks(
    tmp_path: Path, retrieval: Retrieval
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    long_doc = folder / "long.md"
    long_doc.write_text(
        "# Long\n\n" + "\n\n".join(f"Paragraph {i} " + "word " * 40 for i in range(10))
    )
    (folder / "guide.md").write_text(MARKDOWN)

    first = _ingest(retrieval, folder)
    assert sorted(Path(s).name for s in first.added) == ["guide.md", "long.md"]
    store = retrieval.store
    assert isinstance(store, CountingStore)
    written = store.upserted
    assert written == first.chunks_written > 10
    points = _points(retrieval, "docs", "acme")
    assert len(points) == written
    payload = next(p for p in points if p["rel_path"] == "guide.md")
    assert set(payload) >= {"content_hash", "chunk_count", "doc_type", "rel_path", "ingested_at",
                            "heading_path"}  # fmt: skip
    assert payload["source"] == (folder / "guide.md").resolve().as_posix()

    again = _ingest(retrieval, folder)
    assert again.unchanged == 2 and not again.added and not again.updated
    assert store.upserted == written  # 0 upserts

    long_chunks = [p for p in points if p["rel_path"] == "long.md"]
    assert len(long_chunks) >= 5
    long_doc.write_text("# Long\n\nNow a single short paragraph about shrinking.")
    edited = _ingest(retrieval, folder)
    assert [Path(s).name for s in edited.updated] == ["long.md"] and edited.unchanged == 1
    after = [p for p in _points(retrieval, "docs", "acme") if p["rel_path"] == "long.md"]
    assert len(after) == 1 and "shrinking" in str(after[0]["text"])
    assert edited.stale_chunks_removed == len(long_chunks) - 1
    result = retrieval.searcher.search(
        SearchRequest("shrinking", domain="docs", tenant="acme", top_k=3, mode="hybrid")
    )
    assert result.hits[0].source.endswith("long.md")


def test_prune_and_dry_run(tmp_path: Path, retrieval: Retrieval) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nalpha text")
    (folder / "b.md").write_text("# B\n\nbeta text")
    _ingest(retrieval, folder)
    (folder / "b.md").unlink()
    (folder / "c.md").write_text("# C\n\ngamma text")

    dry = _ingest(retrieval, folder, dry_run=True, prune=True)
    assert [Path(s).name for s in dry.added] == ["c.md"]
    assert [Path(s).name for s in dry.deleted] == ["b.md"]
    assert {p["rel_path"] for p in _points(retrieval, "docs", "acme")} == {"a.md", "b.md"}

    kept = _ingest(retrieval, folder)
    assert [Path(s).name for s in kept.gone] == ["b.md"] and not kept.deleted
    pruned = _ingest(retrieval, folder, prune=True)
    assert [Path(s).name for s in pruned.deleted] == ["b.md"]
    assert {p["rel_path"] for p in _points(retrieval, "docs", "acme")} == {"a.md", "c.md"}


@pytest.mark.parametrize("prune", [False, True])
def test_a_dry_run_counts_the_stale_chunks_the_run_would_remove(
    tmp_path: Path, retrieval: Retrieval, prune: bool
) -> None:
    """Invariant: a dry run reports what the run would do, removals included: its stale-chunk
    count is the count of the real run that follows (it read "0 stale chunks removed" beside
    the sources it said would be removed)."""
    folder = tmp_path / "docs"
    folder.mkdir()
    parts = [f"## Part {i}\n\n" + " ".join(f"w{i}x{j}" for j in range(150)) for i in range(6)]
    (folder / "long.md").write_text("# Long\n\n" + "\n\n".join(parts))
    (folder / "gone.md").write_text("# Gone\n\nThe gone note.\n")
    (folder / "emptied.md").write_text("# Emptied\n\nSome text.\n")
    _ingest(retrieval, folder)
    (folder / "long.md").write_text("# Long\n\nShort now.\n")
    (folder / "gone.md").unlink()
    (folder / "emptied.md").write_text("---\ntitle: nothing\n---\n")  # front matter only

    dry = _ingest(retrieval, folder, dry_run=True, prune=prune)
    real = _ingest(retrieval, folder, prune=prune)
    assert real.stale_chunks_removed > len(parts) - 1  # long's extra chunks at least
    assert dry.stale_chunks_removed == real.stale_chunks_removed
    assert f"{dry.stale_chunks_removed} stale chunks would be removed" in format_report(dry)
    assert f"{real.stale_chunks_removed} stale chunks removed" in format_report(real)


def _stored_then_linked(retrieval: Retrieval, path: Path, target: Path, text: str) -> None:
    """``path`` written with ``text`` and ingested (its folder), then replaced by a hard link
    of ``target``, as deduplicating tools do."""
    path.write_text(text)
    _ingest(retrieval, path.parent)
    path.unlink()
    os.link(target, path)


def test_a_file_with_two_names_is_stored_once(tmp_path: Path, retrieval: Retrieval) -> None:
    """A hard link made after its file was ingested, in a folder ingested later, was stored as
    a second copy; a stored name that a deduplicating tool turned into a hard link of another
    stored file read "no longer on disk" and --prune deleted it as gone."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "vpn.md").write_text("# VPN\n\nConnect with the WireGuard profile.\n")
    _ingest(retrieval, a)
    os.link(a / "vpn.md", b / "vpn-link.md")
    later = _ingest(retrieval, b, prune=True)
    assert not later.added and not later.deleted and not later.gone
    assert [(Path(s.path).name, s.kind) for s in later.skipped] == [("vpn-link.md", "link")]
    assert "ingested there" in later.skipped[0].reason
    assert {p["source"] for p in _points(retrieval, "docs", "acme")} == {(a / "vpn.md").as_posix()}

    # two stored files, then the second replaced by a hard link of the first
    (b / "vpn-link.md").unlink()
    _stored_then_linked(
        retrieval, b / "vpn-copy.md", a / "vpn.md", "# VPN\n\nConnect with the WireGuard profile.\n"
    )
    dry = _ingest(retrieval, tmp_path, dry_run=True)
    both = _ingest(retrieval, tmp_path)
    for report in (dry, both):
        assert report.relinked == [(b / "vpn-copy.md").as_posix()], report
        assert not report.gone and not report.deleted
        text = format_report(report)
        assert f"    relinked: {b / 'vpn-copy.md'}" in text
    assert "second copy would be removed" in format_report(dry)
    assert "second copy was removed" in format_report(both)
    assert {p["source"] for p in _points(retrieval, "docs", "acme")} == {(a / "vpn.md").as_posix()}
    again = _ingest(retrieval, tmp_path, prune=True)
    assert not again.relinked and not again.gone and not again.deleted and again.unchanged == 1

    # the same, the folders ingested in separate runs: the first stored name keeps the file
    (b / "vpn-copy.md").unlink()
    _stored_then_linked(
        retrieval, b / "vpn-copy.md", a / "vpn.md", "# Giraffe\n\nA different file.\n"
    )
    alone = _ingest(retrieval, b, prune=True)
    assert alone.relinked == [(b / "vpn-copy.md").as_posix()] and not alone.updated, alone
    assert {p["source"] for p in _points(retrieval, "docs", "acme")} == {(a / "vpn.md").as_posix()}


def test_a_path_now_behind_a_symlink_is_never_pruned(tmp_path: Path, retrieval: Retrieval) -> None:
    """A file moved elsewhere and linked back (dotfiles, stow), or a folder moved to another
    disk and linked back, is still at its path: --prune deleted it as gone, though the same run
    listed the link. Links are not followed, so the walk cannot prove what is behind one gone:
    kept and reported. A link to a file stored under its own path inside the walk leaves the
    link's old copy a second copy: relinked."""
    notes, away = tmp_path / "notes", tmp_path / "dotfiles"
    (notes / "team").mkdir(parents=True)
    away.mkdir()
    (notes / "setup.md").write_text("# Setup\n\nThe laptop setup uses fish shell.\n")
    (notes / "team" / "rota.md").write_text("# Rota\n\nOn call rotates weekly.\n")
    (notes / "alias.md").write_text("# Alias\n\nA file that becomes a link.\n")
    (notes / "target.md").write_text("# Target\n\nThe file the link will name.\n")
    _ingest(retrieval, notes)
    (notes / "setup.md").rename(away / "setup.md")
    (notes / "setup.md").symlink_to(away / "setup.md")
    (notes / "team").rename(away / "team")
    (notes / "team").symlink_to(away / "team", target_is_directory=True)
    (notes / "alias.md").unlink()
    (notes / "alias.md").symlink_to("target.md")
    report = _ingest(retrieval, notes, prune=True)
    setup, rota = (notes / "setup.md").as_posix(), (notes / "team" / "rota.md").as_posix()
    assert not report.deleted and not report.gone, report
    assert report.kept == sorted([setup, rota])
    assert report.relinked == [(notes / "alias.md").as_posix()]
    assert {p["source"] for p in _points(retrieval, "docs", "acme")} == {
        setup,
        rota,
        (notes / "target.md").as_posix(),
    }
    assert "or the path is now a symlink (not followed)" in format_report(report)


def test_delete_by_source_and_all(tmp_path: Path, retrieval: Retrieval) -> None:
    folder = tmp_path / "legal"
    folder.mkdir()
    (folder / "contract.txt").write_text(CONTRACT)
    (folder / "other.txt").write_text("Section 1 Scope\n\nThis licence covers everything.")
    _ingest(retrieval, folder, domain="legal")
    removed = delete_sources(
        retrieval.indexer,
        tenant="acme",
        domains=[Domain.LEGAL],
        source=str(folder / "contract.txt"),
    )
    assert removed["legal"] > 0
    assert {p["rel_path"] for p in _points(retrieval, "legal", "acme")} == {"other.txt"}
    delete_sources(retrieval.indexer, tenant="acme", domains=list(Domain))
    assert _points(retrieval, "legal", "acme") == []
    stats = tenant_lengths(retrieval.store.read_meta("legal"), "acme")
    assert (stats.points, stats.total_len) == (0, 0.0)


def test_skip_reasons_and_the_run_goes_on(tmp_path: Path, retrieval: Retrieval) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.md").write_text("# Good\n\nreadable text")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog")
    (folder / "latin1.txt").write_bytes(b"caf\xe9 au lait")
    (folder / "blob.md").write_bytes(b"\x00\x01\x02binary")
    (folder / "image.png").write_bytes(b"\x89PNG")
    with open(folder / "huge.txt", "wb") as fh:  # sparse: 200 MB without writing them
        fh.truncate(200_000_000)
    (folder / ".hidden.md").write_text("secret")
    (folder / "paper.pdf").write_bytes(make_pdf([["A real page about tides."]]))

    report = _ingest(retrieval, folder)
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert reasons["broken.pdf"].startswith("corrupt PDF")
    assert reasons["latin1.txt"].startswith("invalid UTF-8")
    assert reasons["blob.md"] == "binary file"
    assert reasons["image.png"].startswith("unsupported file type")
    assert reasons["huge.txt"].startswith("too large (200.0 MB")
    assert ".hidden.md" not in reasons and report.ignored == 1
    assert {s.kind for s in report.skipped} == {"file"}  # decisions, not file-system errors
    assert sorted(Path(s).name for s in report.added) == ["good.md", "paper.pdf"]
    pages = [p["page"] for p in _points(retrieval, "docs", "acme") if p["rel_path"] == "paper.pdf"]
    assert pages == [1]


def test_scripts_without_an_extension_are_code_by_their_shebang(
    tmp_path: Path, retrieval: Retrieval
) -> None:
    repo = tmp_path / "repo"
    (repo / "bin").mkdir(parents=True)
    (repo / "bin" / "deploy").write_text(
        '#!/usr/bin/env python3\n"""Deploy tool."""\n\n\n'
        "def rollout_canary(percent):\n"
        '    """Send a percentage of traffic to the canary release."""\n'
        "    return percent\n"
    )
    (repo / "bin" / "rotate").write_text("#!/bin/bash\nrotate_backup_keys() {\n  echo ok\n}\n")
    (repo / "bin" / "NOTES").write_text("no shebang here\n")
    report = _ingest(retrieval, repo, domain="code")
    assert sorted(Path(s).name for s in report.added) == ["deploy", "rotate"]
    assert [(Path(s.path).name, s.reason) for s in report.skipped] == [
        ("NOTES", "unsupported file type for code (no extension)")
    ]
    by_symbol = {p["symbol"]: p for p in _points(retrieval, "code", "acme")}
    assert by_symbol["rollout_canary"]["language"] == "python"
    assert by_symbol["rotate_backup_keys"]["language"] == "shell"
    hits = retrieval.searcher.rank(
        SearchRequest("rollout_canary", domain="code", tenant="acme", top_k=3, mode="hybrid")
    ).hits
    assert hits[0].metadata["rel_path"] == "bin/deploy"


def test_gitignore_respected_for_code(tmp_path: Path, retrieval: Retrieval) -> None:
    repo = tmp_path / "repo"
    (repo / "build").mkdir(parents=True)
    (repo / ".git").mkdir()
    (repo / ".gitignore").write_text("build/\n*.log\n")
    (repo / "cache.py").write_text(PYTHON_MODULE)
    (repo / "build" / "gen.py").write_text("x = 1\n")
    (repo / "debug.log").write_text("noise")
    report = _ingest(retrieval, repo, domain="code")
    assert [Path(s).name for s in report.added] == ["cache.py"]
    points = _points(retrieval, "code", "acme")
    fetch = next(p for p in points if p["symbol"] == "Cache.fetch")
    lines = PYTHON_MODULE.split("\n")
    assert fetch["text"] == "\n".join(lines[int(fetch["start_line"]) - 1 : int(fetch["end_line"])])  # type: ignore[call-overload]
    assert fetch["language"] == "python" and fetch["symbol_kind"] == "method"


def test_tenant_separation(tmp_path: Path, retrieval: Retrieval) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nshared file about otters")
    _ingest(retrieval, folder, tenant="acme")
    other = _ingest(retrieval, folder, tenant="globex")
    assert len(other.added) == 1  # not "unchanged": acme's copy is not globex's
    (folder / "a.md").unlink()
    _ingest(retrieval, folder, tenant="globex", prune=True)
    assert _points(retrieval, "docs", "globex") == []
    assert len(_points(retrieval, "docs", "acme")) == 1
    hits = retrieval.searcher.search(
        SearchRequest("otters", domain="docs", tenant="acme", top_k=3, mode="hybrid")
    ).hits
    assert hits and hits[0].metadata["rel_path"] == "a.md"
    manifest = load_manifest(retrieval.store, "docs", "globex")
    assert manifest == {}


def test_missing_path_is_a_clear_error(tmp_path: Path, retrieval: Retrieval) -> None:
    with pytest.raises(ValueError, match="no such file or directory"):
        _ingest(retrieval, tmp_path / "nope")
    assert os.path.exists(tmp_path)


def test_noop_bench_reports_no_model_calls(embedder: DenseEmbedder) -> None:
    from retrieval_eval.bench_ingest import bench_ingest

    ((label, figure),) = bench_ingest(embedder, domains=(), noop_files=30)
    assert "30 unchanged files" in label
    assert " 0 model calls, 0 upserts" in figure


def test_sources_gone_but_kept_leave_the_folder_stale(tmp_path: Path, retrieval: Retrieval) -> None:
    """Field report: a file deleted from disk, then a re-ingest without --prune: the folder
    read as synced while searches still returned the gone file. Its record now counts the
    kept sources as pending until a pruning run."""
    folder = tmp_path / "notes"
    folder.mkdir()
    for name in ("otters.md", "seals.md"):
        (folder / name).write_text(f"# {name}\n\nNotes about {name[:-3]}.\n")

    def record() -> tuple[str, int]:
        (one,) = root_freshness(retrieval.store, retrieval.settings, "acme", Domain.DOCS)
        return one.status, one.pending

    run_ingest(retrieval.indexer, [folder], domain="docs", tenant="acme", progress=False)
    assert record() == ("unknown", 0)  # synced; not a git work tree, not watched
    (folder / "seals.md").unlink()
    report = run_ingest(retrieval.indexer, [folder], domain="docs", tenant="acme", progress=False)
    assert len(report.gone) == 1 and record() == ("stale", 1)
    run_ingest(
        retrieval.indexer, [folder], domain="docs", tenant="acme", prune=True, progress=False
    )
    assert record() == ("unknown", 0)


UNINDEXABLE = {
    "re-saved in cp1252": lambda p: p.write_bytes(
        "# Menu\n\nCaf\u00e9 cr\u00e8me br\u00fbl\u00e9e.\n".encode("cp1252")
    ),
    "grown past the size limit": lambda p: p.write_text("# Menu\n\n" + "lemon tart " * 20_000),
    "become binary": lambda p: p.write_bytes(b"\x00\x01\x02PK\x03\x04" * 100),
    "emptied": lambda p: p.write_text("   \n"),
    "front matter left alone": lambda p: p.write_text("---\nweight: 3\n---\n"),
    "replaced by a pipe": lambda p: (p.unlink(), os.mkfifo(p)),
}


@pytest.mark.parametrize("how", sorted(UNINDEXABLE))
@pytest.mark.parametrize("dry_run", [False, True])
def test_a_stored_file_that_can_no_longer_be_indexed_leaves_the_index(
    tmp_path: Path, retrieval: Retrieval, how: str, dry_run: bool
) -> None:
    """Fresh user: a file re-saved as cp1252 (or grown past the size limit) was skipped, and
    searches kept finding its old text, --prune or not; emptying it already removed it.
    Invariant: a stored file found again but refused for what it now holds (encoding, size,
    binary, no text) has no chunks left, the run lists it deleted and its skip says why; a
    dry run says the same and removes nothing. (A file the file system refuses keeps its
    chunks: tests/ingest/test_ingest_walk.py, unreadable folders.)"""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "keep.md").write_text("# Keep\n\nThe kept note about apples.\n")
    menu = folder / "menu.md"
    menu.write_text("# Menu\n\nThe cafe serves lemon tart on Mondays.\n")
    _ingest(retrieval, folder)
    UNINDEXABLE[how](menu)
    report = _ingest(retrieval, folder, dry_run=dry_run)
    assert report.deleted == [menu.as_posix()]
    [skip] = [s for s in report.skipped if s.path.endswith("menu.md")]
    assert "earlier version's chunks were removed" in skip.reason
    assert report.stale_chunks_removed >= 1
    stored = {p["rel_path"] for p in _points(retrieval, "docs", "acme")}
    assert stored == ({"keep.md", "menu.md"} if dry_run else {"keep.md"})
    if not dry_run:  # nothing stored now: a plain skip
        again = _ingest(retrieval, folder)
        assert not again.deleted and all("earlier" not in s.reason for s in again.skipped)
