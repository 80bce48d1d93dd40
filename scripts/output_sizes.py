"""Sizes of the search tools' output (structured JSON and text rendering), in characters.

Ingests the bundled demo samples (docs, legal, code) into a throwaway store, then calls each
search tool through an in-process MCP session for every sample query at top_k 8 and 50, and
prints the mean characters per call of the structured content (JSON), the text content and
the resource_link blocks (JSON).

    PYTHONPATH=$PWD HF_HUB_OFFLINE=1 python scripts/output_sizes.py [--max-chars N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from server.app import build_server
from server.demo import SEARCH_TOOLS, sample_folder
from server.ingest.runner import run_ingest
from server.retrieval.factory import build_retrieval
from server.runtime import ServerRuntime
from server.settings import Domain, Settings

TENANT = "measure"


def _queries(domain: Domain, folder: Path, count: int) -> list[str]:
    lines = (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["query"] for line in lines if line.strip()][:count]


async def _measure(
    runtime: ServerRuntime, queries: dict[Domain, list[str]], extra: dict[str, Any]
) -> None:
    async with Client(build_server(runtime, stdio_tenant=TENANT)) as client:
        for top_k in (8, 50):
            structured: list[int] = []
            text: list[int] = []
            links: list[int] = []
            hits: list[int] = []
            for domain, domain_queries in queries.items():
                for query in domain_queries:
                    args = {"query": query, "top_k": top_k, **extra}
                    result = await client.call_tool(SEARCH_TOOLS[domain], args)
                    assert not result.is_error, result.content
                    structured.append(len(json.dumps(result.structured_content)))
                    text.append(sum(len(c.text) for c in result.content if c.type == "text"))
                    links.append(
                        sum(
                            len(c.model_dump_json(by_alias=True, exclude_none=True))
                            for c in result.content
                            if c.type == "resource_link"
                        )
                    )
                    hits.append(len((result.structured_content or {}).get("hits", [])))
            print(
                f"top_k={top_k}: {len(text)} calls, mean hits {statistics.mean(hits):.1f}, "
                f"structured {statistics.mean(structured):.0f} chars, "
                f"text {statistics.mean(text):.0f} chars, "
                f"resource links {statistics.mean(links):.0f} chars, "
                f"ratio {statistics.mean(structured) / statistics.mean(text):.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-chars", type=int, help="pass this output budget to every call")
    parser.add_argument("--queries", type=int, default=6, help="sample queries per domain")
    args = parser.parse_args()
    extra = {} if args.max_chars is None else {"max_chars": args.max_chars}
    with tempfile.TemporaryDirectory(prefix="output-sizes-") as scratch:
        settings = Settings(store_path=Path(scratch) / "store", reranker_model="none")
        retrieval = build_retrieval(settings, with_reranker=False)
        queries: dict[Domain, list[str]] = {}
        for domain in Domain:
            with sample_folder(domain) as folder:
                run_ingest(
                    retrieval.indexer,
                    [folder / "corpus"],
                    domain=domain,
                    tenant=TENANT,
                    progress=False,
                )
                queries[domain] = _queries(domain, folder, args.queries)
        runtime = ServerRuntime(settings, store=retrieval.store, embedder=retrieval.embedder)
        anyio.run(_measure, runtime, queries, extra)
        retrieval.store.close()


if __name__ == "__main__":
    main()
