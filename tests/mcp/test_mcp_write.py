"""The write tools through real MCP sessions: index_path as a job with throttled progress,
job_status / cancel_job, add_text, remove_source; off unless enabled, refused for read-scoped
tokens, confined to the roots and to the caller's tenant."""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import Tool
from mcp_support import cli_env, error_text, http_server, serve_command, validate_structured

from server.app import build_server
from server.auth import TokenFile
from server.ingest.manifest import load_manifest
from server.ingest.runner import IngestReport
from server.jobs import SKIPPED_SHOWN, JobProgress, JobState, JobView, summarize
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.runtime import ServerRuntime
from server.settings import Domain, Settings
from server.tools.write import render_job

pytestmark = pytest.mark.anyio

WRITE_TOOLS = {"index_path", "job_status", "cancel_job", "remove_source", "add_text"}
INTERVAL = 0.1


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


def write_settings(store: Path, roots: list[Path], **mcp: Any) -> Settings:
    values: dict[str, Any] = {
        "allow_write": True,
        "roots": roots,
        "progress_interval_seconds": INTERVAL,
        "load_delay_seconds": 0,
        **mcp,
    }
    return Settings(
        store_path=store,
        reranker_model="none",
        ingest={"batch_chunks": 2},
        mcp=values,
    )


def make_folder(folder: Path, count: int, word: str = "topic", version: str = "v1") -> Path:
    """``count`` small Markdown files, each with a unique made-up word ``<word><i>x``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"note_{i:03d}.md").write_text(
            f"# Note {i}\n\nThe {word}{i}x procedure ({version}) keeps the archive tidy. "
            f"Step {i} of the checklist covers the {word}{i}x case in detail.\n"
        )
    return folder


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    root = tmp_path / "projects"
    root.mkdir()
    return root


@pytest.fixture
def runtime(tmp_path: Path, roots: Path, embedder: DenseEmbedder) -> Iterator[ServerRuntime]:
    store = EdgeStore(tmp_path / "store")
    # a loaded machine must not turn a finished call into a "running" one: the wait limit
    # itself is exercised with slow_runtime
    settings = write_settings(store.root, [roots], job_wait_seconds=600)
    yield ServerRuntime(settings, store=store, embedder=embedder)
    store.close()


@pytest.fixture
async def client(runtime: ServerRuntime) -> AsyncIterator[Client]:
    async with Client(build_server(runtime, stdio_tenant="acme")) as session:
        yield session


async def tool_map(client: Client) -> dict[str, Tool]:
    return {t.name: t for t in (await client.list_tools()).tools}


async def call(client: Client, name: str, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
    tools = await tool_map(client)
    return validate_structured(tools[name], await client.call_tool(name, args, **kw))


async def until_done(client: Client, job: dict[str, Any]) -> dict[str, Any]:
    """Follow a job through job_status until it ends (a hang fails after 10 minutes)."""
    deadline = time.monotonic() + 600
    while job["state"] == "running" and time.monotonic() < deadline:
        job = await call(client, "job_status", {"job_id": job["job_id"], "wait_s": 0.2})
    return job


async def progress_settled(seen: list[float], last: float) -> list[float]:
    """``seen`` once its last value is ``last`` (up to 10 s). Over a real transport the SDK
    client runs each progress callback as its own task, so the call's result can arrive before
    the callback for the final notification has run, though the server sent that first."""
    with anyio.move_on_after(10):
        while not seen or seen[-1] != last:
            await anyio.sleep(0.01)
    return seen


def complete_sources(store: EdgeStore, tenant: str, folder: Path) -> dict[str, bool]:
    """Per stored source under ``folder``: whether its chunks are exactly one whole version of
    the file now on disk (the manifest rule a re-run converges to)."""
    states = load_manifest(store, "docs", tenant)
    return {
        source: state.is_complete(hashlib.sha256(Path(source).read_bytes()).hexdigest())
        for source, state in states.items()
        if source.startswith(folder.as_posix() + "/")
    }


# -- registration -------------------------------------------------------------------------------


async def test_write_tools_absent_unless_enabled(tmp_path: Path, embedder: DenseEmbedder) -> None:
    store = EdgeStore(tmp_path / "store")
    try:
        settings = Settings(store_path=store.root, reranker_model="none")
        runtime = ServerRuntime(settings, store=store, embedder=embedder)
        async with Client(build_server(runtime, stdio_tenant="acme")) as session:
            names = set(await tool_map(session))
            assert not names & WRITE_TOOLS and "doc_search" in names
            result = await session.call_tool("add_text", {"text": "x", "title": "y"})
            assert result.is_error and "add_text" in error_text(result)
    finally:
        store.close()


async def test_write_tools_annotations_and_schemas(client: Client) -> None:
    tools = await tool_map(client)
    assert set(tools) >= WRITE_TOOLS
    for name in WRITE_TOOLS:
        tool = tools[name]
        assert tool.output_schema and "additionalProperties" not in tool.input_schema
        assert tool.annotations is not None and tool.annotations.open_world_hint is False
    hints = {n: tools[n].annotations for n in WRITE_TOOLS}
    assert hints["job_status"].read_only_hint is True  # type: ignore[union-attr]
    for name in ("index_path", "remove_source"):
        assert hints[name].read_only_hint is False and hints[name].destructive_hint is True  # type: ignore[union-attr]
    assert hints["add_text"].destructive_hint is False  # type: ignore[union-attr]
    assert all(hints[n].idempotent_hint is True for n in WRITE_TOOLS)  # type: ignore[union-attr]
    assert tools["job_status"].input_schema["properties"]["wait_s"]["maximum"] == 600
    assert tools["add_text"].input_schema["properties"]["text"]["maxLength"] == 100_000
    # the read tools keep their read-only hint
    assert tools["doc_search"].annotations.read_only_hint is True  # type: ignore[union-attr]


# -- index_path with progress ------------------------------------------------------------------


async def test_agent_indexes_a_folder_with_throttled_progress_then_finds_it(
    client: Client, roots: Path, runtime: ServerRuntime
) -> None:
    folder = make_folder(roots / "handbook", 24)
    seen: list[tuple[float, float | None, str | None, float]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message, time.monotonic()))

    started = time.monotonic()
    job = await call(
        client, "index_path", {"path": "handbook", "domain": "docs"}, progress_callback=on_progress
    )
    elapsed = time.monotonic() - started
    assert job["state"] == "succeeded", job
    assert job["path"] == folder.resolve().as_posix() and job["root"] == roots.as_posix()
    assert job["result"]["added"] == 24 and job["result"]["chunks_written"] >= 24
    assert job["progress"]["files_done"] == job["progress"]["files_total"] == 24
    # throttled: never more than one per interval (plus the first), never one per file batch
    assert 1 <= len(seen) <= min(24 + 1, elapsed / INTERVAL + 2), seen
    values = [p for p, *_ in seen]
    assert values == sorted(set(values)), "progress must strictly increase"
    assert seen[-1][0] == 24 and seen[-1][1] == 24
    assert all(m and "files" in m and "chunks/s" in m for _, _, m, _ in seen)
    assert all(b[3] - a[3] >= INTERVAL * 0.9 for a, b in itertools.pairwise(seen))
    hits = (await call(client, "doc_search", {"query": "topic17x procedure", "top_k": 3}))["hits"]
    assert hits[0]["source"] == (folder / "note_017.md").resolve().as_posix()
    # again: a re-run changes nothing
    again = await call(client, "index_path", {"path": folder.as_posix(), "domain": "docs"})
    assert again["result"]["unchanged"] == 24 and again["result"]["chunks_written"] == 0
    assert all(complete_sources(runtime.store(), "acme", folder.resolve()).values())


async def test_files_gone_from_disk_are_named_then_pruned_on_request(
    client: Client, roots: Path
) -> None:
    """A re-run without prune names what is gone and how to delete it (the CLI's report says
    the same); prune=true deletes exactly those."""
    folder = make_folder(roots / "handbook", 4).resolve()
    await call(client, "index_path", {"path": "handbook", "domain": "docs"})
    for i in (1, 3):
        (folder / f"note_{i:03d}.md").unlink()
    gone = [(folder / f"note_{i:03d}.md").as_posix() for i in (1, 3)]
    kept = await call(client, "index_path", {"path": "handbook", "domain": "docs"})
    result = kept["result"]
    assert (result["gone"], result["gone_sources"], result["deleted"]) == (2, gone, 0)
    assert (result["unlisted"], result["unlisted_sources"]) == (0, [])
    text = render_job(JobView.model_validate(kept))
    assert "2 stored source(s) no longer on disk, still indexed" in text and "prune=true" in text
    assert all(f"gone {source}" in text.splitlines() for source in gone)
    pruned = await call(client, "index_path", {"path": "handbook", "domain": "docs", "prune": True})
    assert (pruned["result"]["deleted"], pruned["result"]["gone"]) == (2, 0)
    listed = await call(client, "list_sources", {"domain": "docs"})
    assert sorted(s["source"] for s in listed["sources"]) == [
        (folder / f"note_{i:03d}.md").as_posix() for i in (0, 2)
    ]


def test_sources_kept_under_an_unlisted_folder_are_named_apart_from_gone_ones() -> None:
    """Kept because a folder could not be listed is not "gone": prune cannot delete them and
    the summary says why (the walk itself is tested in tests/ingest/test_ingest_walk.py)."""
    report = IngestReport(
        domain="docs",
        tenant="acme",
        gone=["/r/a.md"],
        kept=[f"/r/private/{i}.md" for i in range(30)],
        relinked=["/r/b.md"],
    )
    summary = summarize(report)
    assert (summary.unlisted, len(summary.unlisted_sources), summary.gone) == (30, SKIPPED_SHOWN, 1)
    view = JobView(
        job_id="j", state=JobState.SUCCEEDED, progress=JobProgress(
            files_total=1, files_done=1, chunks_written=0, chunks_per_second=0,
            elapsed_seconds=1, eta_seconds=None), path="/r", root="/r", domain=Domain.DOCS,
        prune=True, started_at="t", result=summary,
    )  # fmt: skip
    lines = render_job(view).splitlines()
    assert any(
        line.startswith("30 stored source(s) not found but kept: a folder") for line in lines
    )
    assert "kept /r/private/0.md" in lines and "gone /r/a.md" in lines
    assert "relinked /r/b.md" in lines and summary.relinked_sources == ["/r/b.md"]


@pytest.mark.parametrize(
    "bad",
    [
        "../outside",
        "handbook/../../outside",
        "OUTSIDE_ABS",
        "SIBLING_PREFIX",
        "escape_link",
        "handbook/escape_link",
        "missing",
        "",
    ],
)
async def test_paths_outside_the_roots_are_refused(
    client: Client, roots: Path, tmp_path: Path, bad: str
) -> None:
    outside = make_folder(tmp_path / "outside", 2, word="secret")
    sibling = make_folder(Path(roots.as_posix() + "-other"), 1, word="secret")
    make_folder(roots / "handbook", 1)
    (roots / "escape_link").symlink_to(outside, target_is_directory=True)
    (roots / "handbook" / "escape_link").symlink_to(outside, target_is_directory=True)
    path = {"OUTSIDE_ABS": outside.as_posix(), "SIBLING_PREFIX": sibling.as_posix()}.get(bad, bad)
    result = await client.call_tool("index_path", {"path": path, "domain": "docs"})
    message = error_text(result)
    assert "\n" not in message and "Traceback" not in message
    assert any(w in message for w in ("outside", "'..'", "does not exist", "empty"))
    hits = (await call(client, "doc_search", {"query": "secret0x procedure", "top_k": 5}))["hits"]
    assert all("secret" not in h["text"] for h in hits)


async def test_index_path_without_roots_is_refused(tmp_path: Path, embedder: DenseEmbedder) -> None:
    store = EdgeStore(tmp_path / "store")
    try:
        runtime = ServerRuntime(write_settings(store.root, []), store=store, embedder=embedder)
        async with Client(build_server(runtime, stdio_tenant="acme")) as session:
            result = await session.call_tool("index_path", {"path": "/tmp", "domain": "docs"})
            assert "--root" in error_text(result)
    finally:
        store.close()


# -- jobs: wait limit, survival, cancellation, one per root -----------------------------------


@pytest.fixture
def slow_runtime(tmp_path: Path, roots: Path, embedder: DenseEmbedder) -> Iterator[ServerRuntime]:
    """A runtime whose tool calls wait only 0.2 s for a job: the call returns it running."""
    store = EdgeStore(tmp_path / "store-slow")
    settings = write_settings(store.root, [roots], job_wait_seconds=0.2)
    settings.ingest.batch_chunks = 4
    yield ServerRuntime(settings, store=store, embedder=embedder)
    store.close()


async def test_job_outlives_the_wait_and_the_client(
    slow_runtime: ServerRuntime, roots: Path
) -> None:
    folder = make_folder(roots / "big", 30)
    server = build_server(slow_runtime, stdio_tenant="acme")
    async with Client(server) as first:
        job = await call(first, "index_path", {"path": "big", "domain": "docs"})
        assert (
            job["state"] == "running"
            and "job_status"
            in (await first.call_tool("job_status", {"job_id": job["job_id"], "wait_s": 0}))
            .content[0]
            .text
        )  # type: ignore[union-attr]
        again = await call(first, "index_path", {"path": "big/note_001.md", "domain": "docs"})
        assert again["job_id"] == job["job_id"] and "already running" in again["note"]
    # the session is gone; a new one follows the same job to its end
    async with Client(server) as second:
        final = await until_done(second, job)
        assert final["state"] == "succeeded", final
        assert final["result"]["added"] == 30
        hits = (await call(second, "doc_search", {"query": "topic22x", "top_k": 3}))["hits"]
        assert hits[0]["source"] == (folder / "note_022.md").resolve().as_posix()


async def test_cancel_leaves_a_consistent_store_and_a_rerun_converges(
    slow_runtime: ServerRuntime, roots: Path
) -> None:
    folder = make_folder(roots / "big", 40).resolve()
    server = build_server(slow_runtime, stdio_tenant="acme")
    async with Client(server) as session:
        job = await call(session, "index_path", {"path": "big", "domain": "docs"})
        assert job["state"] == "running"
        await call(session, "cancel_job", {"job_id": job["job_id"]})
        final = await until_done(session, job)
        assert final["state"] == "cancelled" and final["result"]["cancelled"] is True
        written = final["result"]["added"]
        assert written < 40
        state = complete_sources(slow_runtime.store(), "acme", folder)
        assert len(state) == written and all(state.values()), state
        # a second index_path finishes the rest
        rerun = await until_done(
            session, await call(session, "index_path", {"path": "big", "domain": "docs"})
        )
        assert rerun["state"] == "succeeded"
        assert rerun["result"]["added"] == 40 - written
        assert rerun["result"]["unchanged"] == written
        state = complete_sources(slow_runtime.store(), "acme", folder)
        assert len(state) == 40 and all(state.values())


async def test_search_during_a_large_reindex_stays_correct(
    slow_runtime: ServerRuntime, roots: Path
) -> None:
    folder = make_folder(roots / "big", 24).resolve()
    stable = roots / "stable.md"
    stable.write_text("# Stable\n\nThe quixotrine ledger never changes.\n")
    server = build_server(slow_runtime, stdio_tenant="acme")
    async with Client(server) as session:
        first = await until_done(
            session, await call(session, "index_path", {"path": ".", "domain": "docs"})
        )
        assert first["state"] == "succeeded"
        make_folder(folder, 24, version="v2 revised")
        job = await call(session, "index_path", {"path": ".", "domain": "docs"})
        searches = 0
        while True:
            hits = (await call(session, "doc_search", {"query": "quixotrine ledger"}))["hits"]
            assert hits[0]["source"] == stable.resolve().as_posix()
            ids = [h["id"] for h in hits]
            assert len(ids) == len(set(ids))
            for hit in hits:  # every hit is one whole version of its file
                assert ("(v1)" in hit["text"]) != ("(v2 revised)" in hit["text"]) or hit[
                    "source"
                ] == stable.resolve().as_posix()
            searches += 1
            status = await call(session, "job_status", {"job_id": job["job_id"], "wait_s": 0})
            if status["state"] != "running":
                break
            await anyio.sleep(0.05)
        assert status["state"] == "succeeded" and status["result"]["updated"] == 24
        assert searches >= 1
        state = complete_sources(slow_runtime.store(), "acme", folder)
        assert len(state) == 24 and all(state.values())


# -- add_text, remove_source, tenants -------------------------------------------------------------


async def test_notes_are_stored_found_listed_and_removed(client: Client) -> None:
    text = "Decision: the vorpalite cache is flushed nightly at 02:00 UTC by the ops team."
    note = await call(
        client,
        "add_text",
        {"text": text, "title": "Cache decision", "metadata": {"tags": ["decision"]}},
    )
    assert note["source"].startswith("note:") and note["chunks"] == 1 and not note["unchanged"]
    again = await call(
        client,
        "add_text",
        {"text": text, "title": "Cache decision", "metadata": {"tags": ["decision"]}},
    )
    assert again["unchanged"] and again["source"] == note["source"]
    found = await call(
        client, "doc_search", {"query": "vorpalite cache", "filters": {"tags": "decision"}}
    )
    assert found["hits"][0]["source"] == note["source"]
    assert found["hits"][0]["metadata"]["doc_type"] == "note"
    chunk = await call(client, "get_chunk", {"id": found["hits"][0]["id"]})
    assert "vorpalite" in chunk["chunk"]["text"]
    reserved = await client.call_tool(
        "add_text", {"text": "x y", "title": "t", "metadata": {"source": "/etc/passwd"}}
    )
    assert "set by the server" in error_text(reserved)
    both = await client.call_tool(
        "remove_source", {"domain": "docs", "source": note["source"], "path_prefix": "/x"}
    )
    assert "exactly one" in error_text(both)
    removed = await call(client, "remove_source", {"domain": "docs", "source": note["source"]})
    assert removed["sources_removed"] == 1 and removed["chunks_removed"] == 1
    gone = await call(client, "doc_search", {"query": "vorpalite cache"})
    assert all(h["source"] != note["source"] for h in gone["hits"])
    twice = await call(client, "remove_source", {"domain": "docs", "source": note["source"]})
    assert twice["sources_removed"] == 0


async def test_no_write_reaches_another_tenant(runtime: ServerRuntime, roots: Path) -> None:
    folder = make_folder(roots / "shared", 3, word="acmeonly").resolve()
    acme_server = build_server(runtime, stdio_tenant="acme")
    globex_server = build_server(runtime, stdio_tenant="globex")
    async with Client(acme_server) as acme, Client(globex_server) as globex:
        job = await call(acme, "index_path", {"path": "shared", "domain": "docs"})
        assert job["state"] == "succeeded"
        note = await call(acme, "add_text", {"text": "The acmeonly budget is 5k.", "title": "B"})
        # globex sees none of it, cannot follow or cancel the job, cannot remove it
        for query in ("acmeonly1x procedure", "acmeonly budget"):
            hits = (await call(globex, "doc_search", {"query": query}))["hits"]
            assert all("acmeonly" not in h["text"] for h in hits)
        for tool in ("job_status", "cancel_job"):
            assert "no job" in error_text(await globex.call_tool(tool, {"job_id": job["job_id"]}))
        removed = await call(
            globex, "remove_source", {"domain": "docs", "path_prefix": folder.as_posix()}
        )
        assert removed["sources_removed"] == 0
        removed = await call(globex, "remove_source", {"domain": "docs", "source": note["source"]})
        assert removed["sources_removed"] == 0
        # globex indexing the same folder writes only globex's copy
        own = await call(globex, "index_path", {"path": "shared", "domain": "docs"})
        assert own["job_id"] != job["job_id"] and own["result"]["added"] == 3
        removed = await call(
            globex, "remove_source", {"domain": "docs", "path_prefix": folder.as_posix()}
        )
        assert removed["sources_removed"] == 3
        hits = (await call(acme, "doc_search", {"query": "acmeonly2x procedure"}))["hits"]
        assert hits[0]["source"] == (folder / "note_002.md").as_posix()
        listed = await call(acme, "list_sources", {"domain": "docs"})
        assert {s["source"] for s in listed["sources"]} >= {note["source"]}


# -- transports: scopes over HTTP, progress over stdio ------------------------------------------


async def test_read_scoped_tokens_cannot_write_over_http(
    runtime: ServerRuntime, roots: Path, tmp_path: Path
) -> None:
    make_folder(roots / "docs", 2)
    tokens = TokenFile(tmp_path / "tokens.json")
    reader, _ = tokens.add("acme", scope="read")
    writer, _ = tokens.add("acme", scope="write")

    def connect(base: str, token: str) -> Client:
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
        return Client(streamable_http_client(f"{base}/mcp", http_client=http))

    with http_server(runtime, tokens, "streamable-http") as base:
        async with connect(base, reader) as client:
            for name, args in (
                ("add_text", {"text": "a note", "title": "t"}),
                ("index_path", {"path": "docs", "domain": "docs"}),
                ("remove_source", {"domain": "docs", "path_prefix": "docs"}),
                ("job_status", {"job_id": "0" * 16}),
            ):
                message = error_text(await client.call_tool(name, args))
                assert "may only read" in message and "--scope write" in message
            assert not (await client.call_tool("doc_search", {"query": "x"})).is_error
        async with connect(base, writer) as client:
            seen: list[float] = []

            async def on_progress(progress: float, total: float | None, msg: str | None) -> None:
                seen.append(progress)

            job = await call(
                client,
                "index_path",
                {"path": "docs", "domain": "docs"},
                progress_callback=on_progress,
            )
            assert job["state"] == "succeeded" and job["result"]["added"] == 2
            assert (await progress_settled(seen, 2))[-1] == 2


def test_token_scopes_in_the_file(tmp_path: Path) -> None:
    import json

    path = tmp_path / "tokens.json"
    tokens = TokenFile(path)
    _, record = tokens.add("acme", scope="write")
    assert record.scope == "write"
    raw = json.loads(path.read_text())
    raw["tokens"][0].pop("scope")  # a file written before scopes existed
    raw["tokens"][0]["future_field"] = 1  # and a key a later version may add
    path.write_text(json.dumps(raw))
    assert TokenFile(path).records()[record.id].scope == "read"


@pytest.mark.slow
async def test_stdio_agent_indexes_with_progress(tmp_path: Path, roots: Path) -> None:
    folder = make_folder(roots / "repo-docs", 6).resolve()
    store = tmp_path / "stdio-store"
    command = serve_command(
        store, "--transport", "stdio", "--tenant", "acme", "--allow-write", "--root", str(roots)
    )
    env = cli_env(RETRIEVAL_MCP__JOB_WAIT_SECONDS="600")  # the models may load slowly
    params = StdioServerParameters(command=command[0], args=command[1:], env=env)
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with Client(params) as client:
        tools = await tool_map(client)
        assert set(tools) >= WRITE_TOOLS
        job = await call(
            client,
            "index_path",
            {"path": "repo-docs", "domain": "docs"},
            progress_callback=on_progress,
        )
        assert job["state"] == "succeeded" and job["result"]["added"] == 6
        assert (await progress_settled(seen, 6))[-1] == 6
        assert seen == sorted(set(seen))
        hits = (await call(client, "doc_search", {"query": "topic3x procedure"}))["hits"]
        assert hits[0]["source"] == (folder / "note_003.md").as_posix()
