"""Definitions first, measured: the code tuning sets ranked with and without the rule, and at
several depths, tune and held-out parts apart (README, "Definition lookups").

Each set's corpus is indexed (or reused) in the sweep's eval store, every query ranked once
through the product's hybrid search with the rule off, and the rule
(``definitions_first``, as the searcher applies it after fusion) replayed over those hits at
each depth. Queries that are no name are unchanged by construction; the table says how many
of each set are names.

Usage::

    python -m retrieval_eval.definitions_ab [--depths 0,5,10,20,50,100] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from retrieval_eval.eval_sets import tuning_sets
from retrieval_eval.metrics import ndcg_at_k
from retrieval_eval.product import (
    Pipeline,
    SearchHit,
    asked_name,
    build_pipeline,
    definitions_first,
    rank,
)
from retrieval_eval.runner import EVAL_TENANT, RECALL_DEPTH, ensure_indexed
from retrieval_eval.splits import split_of
from retrieval_eval.sweep import DEFAULT_STORE_ROOT
from server.settings import Domain, Settings

DEPTHS = (0, 5, 10, 20, 50, 100)


def _docs(hits: Sequence[SearchHit], limit: int) -> list[str]:
    seen: dict[str, None] = {}
    for hit in hits:
        seen.setdefault(hit.doc_id, None)
        if len(seen) >= limit:
            break
    return list(seen)


def _pipeline(store: Path) -> Pipeline:
    base = Settings()
    domains = dict(base.domains)
    domains[Domain.CODE] = domains[Domain.CODE].model_copy(update={"definition_depth": 0})
    settings = base.model_copy(
        update={
            "store_path": store,
            "qdrant_url": None,
            "reranker_model": "none",
            "domains": domains,
        }
    )
    return build_pipeline(settings)


def measure(depths: Sequence[int], store_root: Path) -> list[dict[str, object]]:
    """Per code set: queries, names among them, and nDCG@10 (tune, held-out) at each depth."""
    rows: list[dict[str, object]] = []
    for tuning in tuning_sets(Domain.CODE):
        dataset = tuning.load()
        pipeline = _pipeline(store_root / "code" / tuning.directory.name)
        try:
            index = ensure_indexed(pipeline, dataset, Domain.CODE.value)
            chunks_per_doc = index["chunks"] / max(1, len(dataset.corpus))
            limit = math.ceil(RECALL_DEPTH * max(1.0, chunks_per_doc)) + 20
            scores: dict[int, dict[str, list[float]]] = {
                d: {"tune": [], "heldout": []} for d in depths
            }
            names = 0
            for query_id, text in dataset.queries.items():
                hits = rank(
                    pipeline,
                    text,
                    domain=Domain.CODE,
                    tenant=EVAL_TENANT,
                    limit=limit,
                    mode="hybrid",
                ).hits
                name = asked_name(text)
                names += name is not None
                part = split_of(query_id)
                for depth in depths:
                    ranked = hits
                    if name and depth:
                        ranked, _ = definitions_first(hits, name, depth)
                    ndcg = ndcg_at_k(_docs(ranked, RECALL_DEPTH), dataset.qrels[query_id], 10)
                    scores[depth][part].append(ndcg)
        finally:
            pipeline.store.close()
        rows.append(
            {
                "set": tuning.name,
                "queries": len(dataset.queries),
                "names": names,
                "ndcg@10": {
                    d: {p: sum(v) / max(1, len(v)) for p, v in parts.items()}
                    for d, parts in scores.items()
                },
            }
        )
        print(f"{tuning.name}: done", file=sys.stderr)
    return rows


def markdown(rows: list[dict[str, object]], depths: Sequence[int]) -> str:
    """The table: one row per set, tune / held-out nDCG@10 at each depth (0: the rule off)."""
    head = "| set | names / queries | " + " | ".join(f"depth {d}" for d in depths) + " |"
    lines = [head, "|" + "---|" * (len(depths) + 2)]
    for row in rows:
        cells = []
        for d in depths:
            score = row["ndcg@10"][d]  # type: ignore[index]
            cells.append(f"{score['tune']:.3f} / {score['heldout']:.3f}")
        lines.append(
            f"| {row['set']} | {row['names']} / {row['queries']} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m retrieval_eval.definitions_ab")
    parser.add_argument("--depths", default=",".join(map(str, DEPTHS)))
    parser.add_argument("--store-root", type=Path, default=DEFAULT_STORE_ROOT)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    depths = [int(d) for d in args.depths.split(",")]
    table = markdown(measure(depths, args.store_root), depths)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
