"""datasets/field/: one folder per kind of field fault, ingested as a user would, results asserted.

Each test ingests a folder through the real ingest job (walker, chunkers, MiniLM, Qdrant Edge)
and checks what a user of the CLI or of the MCP tools gets back.
"""

from __future__ import annotations

import shutil
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp_support import server_settings, validate_structured

from server.app import build_server
from server.ingest.runner import run_ingest
from server.retrieval.chunk_record import citation
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import Retrieval, assemble
from server.retrieval.searcher import NO_KEYWORD_MATCH
from server.retrieval.types import SearchRequest
from server.runtime import ServerRuntime
from server.settings import Domain

FIELD = Path(__file__).resolve().parents[2] / "datasets" / "field"


def _ingest(retrieval: Retrieval, folder: str, domain: str, tenant: str = "acme") -> Any:
    report = run_ingest(
        retrieval.indexer, [FIELD / folder], domain=domain, tenant=tenant, progress=False
    )
    assert not report.skipped, report.skipped
    return report


def _top_files(retrieval: Retrieval, query: str, mode: str = "hybrid", **kw: Any) -> list[str]:
    result = retrieval.searcher.search(
        SearchRequest(query, domain="docs", tenant="acme", mode=mode, **kw)
    )  # type: ignore[arg-type]
    return [Path(h.source).name for h in result.hits]


# -- cjk: keyword matching in Chinese, Japanese, Korean and mixed text ---------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("混合检索", "zh-search.md"),
        ("索引快照", "zh-search.md"),
        ("品尝当地的火锅", "zh-travel.md"),  # a phrase copied from the file
        ("成都", "zh-travel.md"),
        ("経費の精算", "ja-handbook.md"),
        ("会議室", "ja-handbook.md"),
        ("보안 카드", "ko-office.md"),
        ("离线模式", "mixed-release.md"),
        ("offline mode", "mixed-release.md"),
    ],
)
def test_cjk_keyword_matches(retrieval: Retrieval, query: str, expected: str) -> None:
    _ingest(retrieval, "cjk", "docs")
    bm25 = retrieval.searcher.search(
        SearchRequest(query, domain="docs", tenant="acme", mode="bm25")
    )
    assert bm25.hits, f"no keyword hit for {query!r}"
    assert Path(bm25.hits[0].source).name == expected
    assert _top_files(retrieval, query)[0] == expected


def test_no_keyword_match_is_said(retrieval: Retrieval) -> None:
    _ingest(retrieval, "cjk", "docs")
    result = retrieval.searcher.search(
        SearchRequest("量子计算", domain="docs", tenant="acme", mode="hybrid")
    )
    assert NO_KEYWORD_MATCH in result.notes


# -- unicode-forms: composed, decomposed and compatibility forms match each other ---------------


def test_unicode_forms_match_each_other(retrieval: Retrieval) -> None:
    _ingest(retrieval, "unicode-forms/docs", "docs")
    expected = ["geneve.md", "koln.md", "tokyo.md", "geneve.md"]
    queries = (FIELD / "unicode-forms" / "queries.txt").read_text(encoding="utf-8").splitlines()
    for query, name in zip(queries, expected, strict=True):
        result = retrieval.searcher.search(
            SearchRequest(query, domain="docs", tenant="acme", mode="bm25")
        )
        assert result.hits and Path(result.hits[0].source).name == name, query
        # every query term matched: the scores do not depend on the form the query was typed in
        assert result.hits[0].stages.sparse is not None


# -- tenant-stats: another tenant's ingest and delete never move a tenant's scores --------------


def test_other_tenants_do_not_move_scores(retrieval: Retrieval) -> None:
    _ingest(retrieval, "tenant-stats/tenant-a", "docs", tenant="a")

    def seen() -> list[list[tuple[str, float]]]:
        return [
            [
                (h.id, h.score)
                for h in retrieval.searcher.search(
                    SearchRequest("vault", domain="docs", tenant="a", mode=m)
                ).hits
            ]
            for m in ("bm25", "hybrid")
        ]

    before = seen()
    assert before[0]
    _ingest(retrieval, "tenant-stats/tenant-b", "docs", tenant="b")
    assert seen() == before
    retrieval.indexer.delete("docs", "b")
    assert seen() == before


# -- duplicates: identical passages collapse into one hit that lists the copies -----------------


def test_copies_collapse_into_one_hit(retrieval: Retrieval) -> None:
    _ingest(retrieval, "duplicates", "docs")
    result = retrieval.searcher.search(
        SearchRequest("credential security rules", domain="docs", tenant="acme", top_k=3)
    )
    texts = [h.text for h in result.hits]
    assert len(set(texts)) == len(texts) == 3
    copies = [h for h in result.hits if Path(h.source).name == "security.md"]
    assert len(copies) == 1
    # the copies' citations start with their path relative to the ingested folder
    others = sorted(c.citation.split(" > ")[0] for c in copies[0].also_in)
    assert len(others) == 2
    assert sorted([copies[0].metadata["rel_path"], *others]) == [
        "archive/2025/security.md",
        "team-a/security.md",
        "team-b/security.md",
    ]


# -- long-lines: a minified file is windowed, every part searchable -----------------------------


def _code_search(retrieval: Retrieval, query: str, mode: str) -> Any:
    return retrieval.searcher.search(
        SearchRequest(query, domain="code", tenant="acme", mode=mode)  # type: ignore[arg-type]
    )


def test_minified_line_is_searchable_to_its_end(retrieval: Retrieval) -> None:
    report = _ingest(retrieval, "long-lines", "code")
    assert report.chunks_written > 50  # 40 KB on one line: windows, not one cut chunk
    for mode in ("bm25", "hybrid"):
        result = _code_search(retrieval, "computeGiftWrapInsuranceSurcharge", mode)
        assert "function computeGiftWrapInsuranceSurcharge(" in result.hits[0].text
        assert result.hits[0].metadata["start_line"] == 1 and result.hits[0].metadata["parts"] > 50


def test_a_run_the_tokenizer_cannot_split_is_windowed_by_its_length(retrieval: Retrieval) -> None:
    """icons.min.js inlines 24 KB of hex: one word MiniLM's tokenizer reads as one [UNK].
    Charged as one token, it fitted one 25 KB chunk the model never saw, and an agent asking for
    the function after it received all of it. Charged one token per 18 characters (the longest
    piece of the vocabulary), it is windowed like any long text."""
    _ingest(retrieval, "long-lines", "code")
    points, _ = retrieval.store.scroll("code", "acme", limit=1000)
    icons = [p.payload for p in points if p.payload["source"].endswith("icons.min.js")]
    budget = retrieval.settings.ingest.chunk_tokens
    assert len(icons) >= 24_000 // (budget * 18)
    assert max(len(p["text"]) for p in icons) <= budget * 18
    assert "".join(p["text"] for p in sorted(icons, key=lambda p: p["chunk_index"])).replace(
        " ", ""
    ) == (FIELD / "long-lines" / "icons.min.js").read_text().strip().replace(" ", "")
    for mode in ("bm25", "hybrid"):
        result = _code_search(retrieval, "decodeIconFontGlyphTable", mode)
        top = result.hits[0]
        assert "function decodeIconFontGlyphTable(" in top.text
        assert len(top.text) <= budget * 18


# -- front-matter: metadata, never text -----------------------------------------------------------


def test_front_matter_is_title_and_tags(retrieval: Retrieval) -> None:
    _ingest(retrieval, "front-matter", "docs")
    points, _ = retrieval.store.scroll("docs", "acme", limit=100)
    by_file: dict[str, list[dict[str, Any]]] = {}
    for point in points:
        by_file.setdefault(Path(point.payload["source"]).name, []).append(point.payload)
    release = by_file["release-notes.md"]
    assert {p["title"].split(" > ")[0] for p in release} == {"Release checklist"}
    assert all(p["tags"] == ["release", "ops"] for p in release)
    assert all("date:" not in p["text"] and "---" not in p["text"] for p in release)
    runbook = by_file["runbook.md"]
    assert all(p["tags"] == ["database", "oncall"] for p in runbook)
    assert all(p["front_matter"] == {"reviewed": "2026-02-14"} for p in runbook)
    assert {p["title"].split(" > ")[0] for p in runbook} == {"Database failover runbook"}
    # front matter that does not parse is kept as text: nothing is lost
    assert any("title: [unclosed" in p["text"] for p in by_file["broken.md"])
    assert all("tags" not in p for p in by_file["broken.md"])


# -- encodings: UTF-16/32 with a byte-order mark, UTF-8 with a BOM ---------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("WireGuard split-tunnel", "vpn-howto-utf16le.txt"),
        ("printer driver IPP", "printer-utf16be.txt"),
        ("guest network password", "wifi-utf32.txt"),
        ("lost badge front desk", "badge-utf8-bom.md"),
    ],
)
def test_unicode_encodings_are_read(retrieval: Retrieval, query: str, expected: str) -> None:
    report = _ingest(retrieval, "encodings", "docs")
    assert len(report.added) == 4
    top = retrieval.searcher.search(
        SearchRequest(query, domain="docs", tenant="acme", mode="bm25")
    ).hits[0]
    assert Path(top.source).name == expected
    assert "\x00" not in top.text and "\ufeff" not in top.text


# -- walk: each file once whatever the links, every skipped link reported --------------------------


def test_links_counted_once_and_reported(retrieval: Retrieval, tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    shutil.copytree(FIELD / "walk" / "notes", notes)
    (notes / "loop").symlink_to(".")
    (notes / "sub" / "up").symlink_to("..")
    (notes / "alias.md").symlink_to("backup.md")
    (notes / "outside").symlink_to(FIELD / "cjk")
    (notes / "gone.md").symlink_to("missing.md")
    report = run_ingest(retrieval.indexer, [notes], domain="docs", tenant="acme", progress=False)
    real = notes.resolve()
    assert sorted(report.added) == [f"{real}/backup.md", f"{real}/sub/deep.md"]
    reasons = {s.path.removeprefix(f"{real}/"): (s.kind, s.reason) for s in report.skipped}
    assert set(reasons) == {"loop", "sub/up", "alias.md", "outside", "gone.md"}
    assert all(kind == "link" for kind, _ in reasons.values())
    assert reasons["alias.md"][1] == "symlink to backup.md, ingested under its own path"
    assert reasons["loop"][1].startswith("symlink loop")
    assert reasons["gone.md"][1].startswith("broken symlink")
    assert retrieval.store.count("docs", "acme") == 2


# -- through MCP: also_in, path_glob with brackets, tags, notes ------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(tmp_path: Path, embedder: DenseEmbedder) -> AsyncIterator[Client]:
    store = EdgeStore(tmp_path / "mcp-store")
    settings = server_settings(store.root, reranker_model="none")
    retrieval = assemble(settings, store, embedder, None)
    for folder, domain in (
        ("duplicates", "docs"),
        ("front-matter", "docs"),
        ("path-brackets/web", "code"),
    ):
        _ingest(retrieval, folder, domain)
    runtime = ServerRuntime(settings, store=store, embedder=embedder)
    async with Client(build_server(runtime, stdio_tenant="acme")) as session:
        yield session
    store.close()


async def _call(client: Client, name: str, args: dict[str, Any]) -> dict[str, Any]:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    return validate_structured(tools[name], await client.call_tool(name, args))


@pytest.mark.anyio
async def test_mcp_lists_copies_under_one_hit(client: Client) -> None:
    result = await _call(client, "doc_search", {"query": "where do I keep secrets", "top_k": 3})
    policy = [h for h in result["hits"] if h["source"].endswith("security.md")]
    assert len(policy) == 1
    assert len(policy[0]["also_in"]) == 2
    assert all(c["citation"].endswith("Credential policy") for c in policy[0]["also_in"])


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("glob", "expected"),
    [
        ("app/api/orders/[orderId]/*", {"app/api/orders/[orderId]/route.ts"}),
        ("app/api/orders/[orderId]/route.ts", {"app/api/orders/[orderId]/route.ts"}),
        ("app/(shop)/**", {"app/(shop)/cart/page.tsx"}),
        ("app/docs/[...slug]/*.tsx", {"app/docs/[...slug]/page.tsx"}),
        ("**/[...slug]/**", {"app/docs/[...slug]/page.tsx"}),
    ],
)
async def test_mcp_path_glob_with_brackets_as_written(
    client: Client, glob: str, expected: set[str]
) -> None:
    result = await _call(
        client,
        "code_search",
        {"query": "order page price", "top_k": 10, "path_glob": glob},
    )
    assert result["hits"], result["notes"]
    assert {h["metadata"]["rel_path"] for h in result["hits"]} == expected


@pytest.mark.anyio
async def test_mcp_filters_on_front_matter_tags(client: Client) -> None:
    result = await _call(
        client, "doc_search", {"query": "steps", "top_k": 10, "filters": {"tags": "oncall"}}
    )
    assert {Path(h["source"]).name for h in result["hits"]} == {"runbook.md"}
    both = await _call(
        client,
        "doc_search",
        {"query": "steps", "top_k": 10, "filters": {"tags": ["oncall", "release"]}},
    )
    assert {Path(h["source"]).name for h in both["hits"]} == {"runbook.md", "release-notes.md"}


@pytest.mark.anyio
async def test_mcp_says_when_no_keyword_matched(client: Client) -> None:
    result = await _call(client, "doc_search", {"query": "xylophone quartet", "top_k": 3})
    assert NO_KEYWORD_MATCH in result["notes"]


@pytest.mark.anyio
async def test_mcp_source_titles_come_from_front_matter(client: Client) -> None:
    listed = await _call(client, "list_sources", {"domain": "docs", "limit": 50})
    titles = {Path(s["source"]).name: s["title"] for s in listed["sources"]}
    assert titles["release-notes.md"] == "Release checklist"
    assert titles["runbook.md"] == "Database failover runbook"  # not its first heading
    assert all("part" not in s["metadata"] for s in listed["sources"])


@pytest.mark.anyio
async def test_mcp_path_prefix_that_matches_nothing_says_so(client: Client) -> None:
    result = await _call(
        client, "doc_search", {"query": "policy", "filters": {"path_prefix": "no-such-folder"}}
    )
    assert result["hits"] == []
    assert result["notes"] == ["no indexed file is under path_prefix 'no-such-folder'"]


@pytest.mark.anyio
async def test_decomposed_folder_names_match_typed_paths(
    tmp_path: Path, embedder: DenseEmbedder
) -> None:
    """A folder written decomposed (macOS, zip archives) is found by the composed name a user
    types, in path_prefix, path_glob and list_sources alike."""
    root = tmp_path / "kb"
    folder = root / unicodedata.normalize("NFD", "Bürozeiten")
    folder.mkdir(parents=True)
    (folder / unicodedata.normalize("NFD", "Öffnungszeiten.md")).write_text(
        "# Opening hours\n\nThe office opens at eight.\n"
    )
    (root / "other.md").write_text("# Other\n\nThe canteen opens at noon.\n")
    store = EdgeStore(tmp_path / "store")
    settings = server_settings(store.root, reranker_model="none")
    run_ingest(
        assemble(settings, store, embedder, None).indexer,
        [root],
        domain="docs",
        tenant="acme",
        progress=False,
    )
    runtime = ServerRuntime(settings, store=store, embedder=embedder)
    try:
        async with Client(build_server(runtime, stdio_tenant="acme")) as session:
            for filters in ({"path_prefix": "Bürozeiten"}, {"path_glob": "**/Öffnungszeiten.md"}):
                result = validate_structured(
                    await _tool(session, "doc_search"),
                    await session.call_tool("doc_search", {"query": "opens", "filters": filters}),
                )
                assert [Path(h["source"]).parent.name for h in result["hits"]] == [folder.name]
            listed = validate_structured(
                await _tool(session, "list_sources"),
                await session.call_tool(
                    "list_sources", {"domain": "docs", "path_prefix": f"{root}/Bürozeiten"}
                ),
            )
            assert len(listed["sources"]) == 1
    finally:
        store.close()


async def _tool(session: Client, name: str) -> Any:
    return next(t for t in (await session.list_tools()).tools if t.name == name)


def test_windows_of_one_line_cite_their_part() -> None:
    meta = {"rel_path": "dist/app.min.js", "start_line": 1, "end_line": 1, "part": 41, "parts": 85}
    assert citation(Domain.CODE, "/w/dist/app.min.js", "", {**meta, "symbol": "app.min.js"}) == (
        "dist/app.min.js:1-1 (app.min.js), part 41/85"
    )
