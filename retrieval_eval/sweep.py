"""Fusion / depth / BM25 sweep over a domain's tuning sets: index once, score a grid, pick by rule.

For each tuning set of the domain (``eval_sets.TUNING_SETS``), the corpus is indexed once
through the real pipeline into its own eval store (reused on later runs, like
``retrieval-mcp eval``). For each BM25 variant (k1, b: the stored sparse vectors are re-encoded,
nothing is re-embedded) and each candidate depth, every query runs once against the store,
which returns its dense and sparse candidate lists (the dense one blended with part vectors where
the collection has them) exactly as the pipeline's hybrid search gets them; every fusion setting
of the grid is then replayed over those lists (``fusion.py``, checked against the store's own
fusion on every query) and scored at document level (nDCG@10, Recall@100 of the fused list).
Part vectors (docs) need their own index: both are indexed and swept when the grid asks for it.

The table (``sweep_table.py``) gives, per configuration and set, the tune and held-out means
(``splits.py``) and the worst tune score over the sets, which selects the recommended default.
Query-adaptive fusion (``adaptive_fusion.py``) is scored as one more candidate per family.

Usage (one command per domain; see the Makefile's ``sweep-*`` targets)::

    python -m retrieval_eval.sweep --domain legal --json eval-results/sweep-legal.json \\
        --markdown eval-results/sweep-legal.md
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrieval_eval import product
from retrieval_eval.beir import BeirDataset
from retrieval_eval.bm25_variants import encode_variant, restore_default
from retrieval_eval.eval_sets import REPO_ROOT, TuningSet, tuning_sets
from retrieval_eval.fusion import fuse
from retrieval_eval.metrics import ndcg_at_k, recall_at_k
from retrieval_eval.product import (
    DenseEmbedder,
    HybridQuery,
    Pipeline,
    assemble_pipeline,
    load_embedder,
    open_store,
)
from retrieval_eval.runner import EVAL_TENANT, RECALL_DEPTH, ensure_indexed
from retrieval_eval.splits import split_of
from retrieval_eval.sweep_grid import (  # re-exported: kept scores name them here
    Grid,
    IndexVariant,
    StaticConfig,
    default_grid,
)
from retrieval_eval.sweep_report import SweepResult, rank_sweep
from retrieval_eval.sweep_table import SetReport, SetRun
from server.errors import RetrievalError
from server.settings import Domain, FusionSettings, Settings

logger = logging.getLogger(__name__)

DEFAULT_STORE_ROOT = REPO_ROOT / ".eval-store"


@dataclass
class StageLists:
    """What the store returned for one query at one depth: both stages and its own fusion."""

    dense: list[tuple[str, float]]
    sparse: list[tuple[str, float]]
    final: list[str]


def _collapse(points: Sequence[str], doc_of: dict[str, str], limit: int) -> list[str]:
    seen: dict[str, None] = {}
    for point in points:
        seen.setdefault(doc_of[point], None)
        if len(seen) >= limit:
            break
    return list(seen)


def _settings_for(base: Settings, domain: Domain, store: Path, parts: bool) -> Settings:
    domains = dict(base.domains)
    if not parts:
        domains[domain] = domains[domain].model_copy(update={"part_sentences": 0})
    return base.model_copy(
        update={
            "store_path": store,
            "qdrant_url": None,
            "reranker_model": "none",
            "domains": domains,
        }
    )


def _stage_lists(
    pipeline: Pipeline,
    domain: Domain,
    dense: Sequence[list[float]],
    sparse: Sequence[Any],
    candidates: int,
    fusions: Sequence[FusionSettings],
) -> list[StageLists]:
    """One store query per query; the verified fusion rotates through the grid's fusions."""
    _, settings = product.domain_settings(pipeline, domain)
    parts = settings.part_sentences > 0 and pipeline.store.has_part_vectors(settings.collection)
    lists = []
    for i, (vector, sparse_vector) in enumerate(zip(dense, sparse, strict=True)):
        request = HybridQuery(
            tenant=EVAL_TENANT,
            limit=10,
            candidates=candidates,
            dense=vector,
            sparse=sparse_vector,
            fusion=fusions[i % len(fusions)],
            part_weight=settings.part_weight if parts else None,
            hnsw_ef=settings.hnsw_ef,
        )
        response = pipeline.store.query(settings.collection, request)
        lists.append(
            StageLists(
                [(p.id, p.score) for p in response.dense],
                [(p.id, p.score) for p in response.sparse],
                [p.id for p in response.final],
            )
        )
    return lists


def _doc_ids(pipeline: Pipeline, collection: str) -> dict[str, str]:
    doc_of: dict[str, str] = {}
    offset: str | int | None = None
    while True:
        page, offset = pipeline.store.scroll(collection, EVAL_TENANT, limit=1024, offset=offset)
        doc_of.update((p.id, str(p.payload["doc_id"])) for p in page)
        if offset is None:
            return doc_of


def _score_fusion(
    fusion: FusionSettings,
    fusions: Sequence[FusionSettings],
    lists: Sequence[StageLists],
    dataset: BeirDataset,
    query_ids: Sequence[str],
    doc_of: dict[str, str],
    report: SetReport,
) -> tuple[list[float], list[float]]:
    """Per-query nDCG@10 and recall@100 of ``fusion`` over the stage lists; on the queries whose
    store query ran this fusion, also checks our fusion against the store's own."""
    ndcg, recall = [], []
    for i, (qid, stages) in enumerate(zip(query_ids, lists, strict=True)):
        fused = fuse(stages.dense, stages.sparse, fusion)
        judged = dataset.qrels[qid]
        if fusion == fusions[i % len(fusions)]:
            report.fusion_check.add(
                fused,
                stages.final,
                ndcg_at_k(_collapse(fused[:10], doc_of, 10), judged, 10),
                ndcg_at_k(_collapse(stages.final[:10], doc_of, 10), judged, 10),
            )
        ranked = _collapse(fused, doc_of, RECALL_DEPTH)
        ndcg.append(ndcg_at_k(ranked, judged, 10))
        recall.append(recall_at_k(ranked, judged, RECALL_DEPTH))
    return ndcg, recall


def sweep_set(
    tuning_set: TuningSet,
    dataset: BeirDataset,
    grid: Grid,
    base: Settings,
    embedder: DenseEmbedder,
    store_root: Path,
) -> tuple[SetRun, SetReport]:
    """Index the set once per part-vector variant and score every configuration of the grid."""
    from tqdm import tqdm

    domain = tuning_set.domain
    query_ids = list(dataset.queries)
    texts = [dataset.queries[q] for q in query_ids]
    run = SetRun(tuning_set.name, query_ids, [split_of(q) for q in query_ids], texts=texts)
    report = SetReport(
        tuning_set,
        len(query_ids),
        run.splits.count("tune"),
        run.splits.count("heldout"),
        len(dataset.corpus),
    )
    dense = [embedder.embed_query(t) for t in texts]
    for parts in grid.parts:
        suffix = "" if parts or not base.domains[domain].part_sentences else "-noparts"
        # keyed by corpus: sets that share one (go-howto, go-usage) share its index
        store = store_root / domain.value / f"{tuning_set.directory.name}{suffix}"
        settings = _settings_for(base, domain, store, parts)
        pipeline = assemble_pipeline(settings, open_store(settings), embedder)
        try:
            report.index["parts" if parts else "no-parts"] = ensure_indexed(
                pipeline, dataset, domain.value
            ) | {"store": str(store)}
            collection = settings.domains[domain].collection
            doc_of = _doc_ids(pipeline, collection)
            encoder = product.sparse_encoder(pipeline, domain)
            sparse = [encoder.encode_query(t) for t in texts]
            try:
                for k1, b in grid.bm25:
                    encode_variant(pipeline, domain.value, k1, b)
                    for c in grid.candidates:
                        desc = f"{tuning_set.name} parts={parts} k1={k1} b={b} c={c}"
                        started = time.perf_counter()
                        lists = _stage_lists(pipeline, domain, dense, sparse, c, grid.fusions)
                        for fusion in tqdm(grid.fusions, desc=desc, leave=False, file=sys.stderr):
                            config = StaticConfig(IndexVariant(parts, k1, b), c, fusion)
                            ndcg, recall = _score_fusion(
                                fusion, grid.fusions, lists, dataset, run.query_ids, doc_of, report
                            )
                            run.ndcg[config.label] = np.array(ndcg)
                            run.recall[config.label] = np.array(recall)
                        logger.info("%s: %.1f s", desc, time.perf_counter() - started)
            finally:
                restore_default(pipeline, domain.value)
        finally:
            pipeline.store.close()
    return run, report


class _Unpickler(pickle.Unpickler):
    """Reads scores kept by a sweep run as ``python -m`` (classes named ``__main__.X``)."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "__main__":
            module = __name__
        return super().find_class(module, name)


def score_sets(
    sets: Sequence[TuningSet],
    grid: Grid,
    settings: Settings,
    store_root: Path,
    limit: int | None = None,
) -> tuple[list[SetRun], list[SetReport]]:
    """Per-query scores of every static configuration on every set.

    ``limit``: only the first N queries of each set (a smoke test; the index is the full one).
    """
    embedder = load_embedder(settings)
    runs, reports = [], []
    for tuning_set in sets:
        dataset = tuning_set.load()
        if limit:
            keep = list(dataset.queries)[:limit]
            dataset.queries = {q: dataset.queries[q] for q in keep}
            dataset.qrels = {q: dataset.qrels[q] for q in keep}
        run, report = sweep_set(tuning_set, dataset, grid, settings, embedder, store_root)
        runs.append(run)
        reports.append(report)
    return runs, reports


def run_sweep(
    domain: Domain,
    *,
    sets: Sequence[TuningSet],
    grid: Grid,
    settings: Settings,
    store_root: Path,
    limit: int | None = None,
) -> SweepResult:
    """Score the grid on every set, then rank static and adaptive configurations by the rule.

    The per-query scores are also kept in ``store_root/<domain>/sweep-scores.pkl`` (a local
    cache beside the indexes), so ``--report-only`` can re-rank and re-render them.
    """
    runs, reports = score_sets(sets, grid, settings, store_root, limit)
    cache = store_root / domain.value / "sweep-scores.pkl"
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps((grid, runs, reports)))
    return rank_sweep(domain, grid, settings, runs, reports)


def load_scores(domain: Domain, store_root: Path) -> tuple[Grid, list[SetRun], list[SetReport]]:
    """The per-query scores the last sweep of ``domain`` kept (RetrievalError when none)."""
    cache = store_root / domain.value / "sweep-scores.pkl"
    if not cache.exists():
        raise RetrievalError(f"no kept sweep scores at {cache}; run the sweep first")
    with cache.open("rb") as handle:  # our own local cache file
        grid, runs, reports = _Unpickler(handle).load()
    return grid, runs, reports


def report_json(report: dict[str, Any]) -> str:
    """The report as JSON: indented, except one line per ranked row (thousands of them)."""
    rows = report.get("rows", [])
    head = json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=1)
    lines = ",\n".join("  " + json.dumps(row, separators=(",", ":")) for row in rows)
    return head[:-2] + ',\n "rows": [\n' + lines + "\n ]\n}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: sweep one domain and write the JSON report and a markdown table."""
    parser = argparse.ArgumentParser(prog="python -m retrieval_eval.sweep", description=__doc__)
    parser.add_argument("--domain", required=True, choices=[d.value for d in Domain])
    parser.add_argument("--sets", help="comma-separated set names (default: all of the domain)")
    parser.add_argument("--store-root", type=Path, default=DEFAULT_STORE_ROOT)
    parser.add_argument("--json", type=Path, help="write the full report here")
    parser.add_argument("--markdown", type=Path, help="write the markdown table here")
    parser.add_argument("--quick", action="store_true", help="default BM25 and depth only")
    parser.add_argument("--no-parts-variant", action="store_true", help="docs: parts on only")
    parser.add_argument("--limit", type=int, help="first N queries of each set (smoke test)")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="re-rank and re-render the scores the last sweep of the domain kept",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    for noisy in ("httpx", "huggingface_hub", "sentence_transformers", "transformers"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        domain = Domain(args.domain)
        settings = Settings()
        grid = default_grid(settings, domain, quick=args.quick)
        if args.no_parts_variant:
            grid = Grid(grid.fusions, grid.candidates, grid.bm25, grid.parts[:1])
        sets = tuning_sets(domain, args.sets.split(",") if args.sets else None)
        logger.info("%s: %d sets, %d static configurations", domain.value, len(sets), grid.size())
        if args.report_only:
            kept_grid, runs, reports = load_scores(domain, args.store_root)
            result = rank_sweep(domain, kept_grid, settings, runs, reports)
        else:
            result = run_sweep(
                domain,
                sets=sets,
                grid=grid,
                settings=settings,
                store_root=args.store_root,
                limit=args.limit,
            )
    except RetrievalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = result.markdown()
    print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(report_json(result.as_json()))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    # run under the importable module name, so the kept scores unpickle outside this process
    from retrieval_eval import sweep as _sweep

    sys.exit(_sweep.main())
