"""``retrieval-mcp demo``: the bundled samples ingested and searched over an in-process MCP
session, printed to stdout (a command's output; the samples themselves: server/demo.py)."""

from __future__ import annotations

import json

from server.demo import SEARCH_TOOLS, sample_folder, sample_queries
from server.settings import Domain, Settings


def ingest_samples(settings: Settings, tenant: str) -> None:
    """Ingest every domain's sample corpus for ``tenant`` (the ``retrieval-mcp ingest`` path)
    and print each report."""
    from server.ingest.cli import format_report
    from server.ingest.runner import run_ingest
    from server.retrieval.factory import build_retrieval

    retrieval = build_retrieval(settings, with_reranker=False)
    try:
        for domain in Domain:
            with sample_folder(domain) as folder:
                report = run_ingest(
                    retrieval.indexer,
                    [folder / "corpus"],
                    domain=domain,
                    tenant=tenant,
                    progress=False,
                )
            print(format_report(report))
    finally:
        retrieval.close()


def run_demo(settings: Settings, tenant: str) -> None:
    """Ingest the samples, then one in-process MCP session: tools/list and a search per
    domain (the first sample query). Prints to stdout; raises RetrievalError on bad input."""
    import anyio

    ingest_samples(settings, tenant)
    anyio.run(_demo_session, settings, tenant)
    print(
        "\nServe this store to an MCP client (see README, 'Client configuration'):\n"
        f"  retrieval-mcp serve --transport stdio --tenant {tenant} --store {settings.store_path}"
    )


async def _demo_session(settings: Settings, tenant: str) -> None:
    """One in-process MCP session against the server: the tools, then a search per domain."""
    from mcp import Client
    from mcp.types import TextContent

    from server.app import build_server
    from server.runtime import ServerRuntime

    server = build_server(ServerRuntime(settings), stdio_tenant=tenant)
    async with Client(server) as session:
        listed = (await session.list_tools()).tools
        print(f"\nMCP session: {len(listed)} tools: {', '.join(t.name for t in listed)}")
        for domain, tool in SEARCH_TOOLS.items():
            query = sample_queries(domain)[0]["query"]
            result = await session.call_tool(tool, {"query": query, "top_k": 3})
            print(f"\n>>> {tool}(query={query!r}, top_k=3)")
            for block in result.content:
                if isinstance(block, TextContent):
                    print(block.text)
            hits = (result.structured_content or {}).get("hits") or []
            if hits:
                print("structured content, first hit (text shortened):")
                print(json.dumps(_shortened(dict(hits[0])), indent=2, ensure_ascii=False))


def _shortened(hit: dict[str, object]) -> dict[str, object]:
    text = str(hit.get("text", ""))
    hit["text"] = text[:160] + ("…" if len(text) > 160 else "")
    return hit
