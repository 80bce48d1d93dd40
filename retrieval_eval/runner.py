"""`retrieval-mcp eval`: index a BEIR corpus through the real pipeline and score each mode."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from retrieval_eval import product
from retrieval_eval.baseline import OkapiBaseline
from retrieval_eval.beir import BeirDataset, BeirDocument
from retrieval_eval.bm25_variants import BM25_MARKER, restore_default
from retrieval_eval.metrics import mrr_at_k, ndcg_at_k, percentile, recall_at_k
from retrieval_eval.product import Pipeline, build_pipeline, index_chunks, pack_passages, rank
from server.errors import InvalidRequestError
from server.retrieval.types import SEARCH_MODES, Chunk, IndexReport
from server.settings import Domain, Settings

logger = logging.getLogger(__name__)

EVAL_TENANT = "beir-eval"
BASELINE_MODE = "bm25-baseline"
ALL_MODES = (*SEARCH_MODES, BASELINE_MODE)
RECALL_DEPTH = 100


class ModeScores(BaseModel):
    """Metrics of one mode over all queries."""

    ndcg_at_10: float
    recall_at_100: float
    mrr_at_10: float
    p50_ms: float
    p95_ms: float
    note: str | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ndcg@10": round(self.ndcg_at_10, 4),
            "recall@100": round(self.recall_at_100, 4),
            "mrr@10": round(self.mrr_at_10, 4),
            "p50_ms": round(self.p50_ms, 2),
            "p95_ms": round(self.p95_ms, 2),
        }
        if self.note:
            data["note"] = self.note
        return data


def parse_modes(spec: str) -> list[str]:
    """Comma-separated mode list, validated."""
    modes = [m.strip() for m in spec.split(",") if m.strip()]
    unknown = [m for m in modes if m not in ALL_MODES]
    if unknown or not modes:
        raise InvalidRequestError(f"unknown mode(s) {unknown}; choose from {', '.join(ALL_MODES)}")
    return modes


def document_chunks(
    doc: BeirDocument,
    tenant: str,
    budget: int,
    count: Callable[[str], int],
    *,
    code: bool = False,
) -> list[Chunk]:
    """One chunk per passage that fits the model window together with the title. A code
    document titled ``path:Qualified.name`` (one function of the code corpora) carries that
    name as its ``symbol``, as the product's code chunkers record it."""
    passages = pack_passages(doc.text, budget, count, title=doc.title) or [doc.text]
    metadata: dict[str, Any] = {}
    _, sep, symbol = doc.title.rpartition(":")
    if code and sep and symbol:
        metadata = {"symbol": symbol, "symbol_kind": "function"}
    return [
        Chunk(
            tenant=tenant,
            doc_id=doc.doc_id,
            source=doc.doc_id,
            chunk_index=i,
            text=p,
            title=doc.title,
            metadata=dict(metadata),
        )
        for i, p in enumerate(passages)
    ]


def index_documents(
    pipeline: Pipeline, docs: Sequence[BeirDocument], *, domain: str, tenant: str
) -> IndexReport:
    """Chunk records to the model window and index them for ``tenant`` (with a progress bar)."""
    from tqdm import tqdm

    embedder = pipeline.embedder
    budget = embedder.max_tokens - 2
    chunks = [
        chunk
        for doc in tqdm(docs, desc="chunking", unit="doc", leave=False, file=sys.stderr)
        for chunk in document_chunks(
            doc, tenant, budget, embedder.count_tokens, code=domain == Domain.CODE.value
        )
    ]
    with tqdm(total=len(chunks), desc=f"indexing {domain}", unit="chunk", file=sys.stderr) as bar:
        return index_chunks(pipeline, domain, chunks, bar.update)


def _index_signature(dataset: BeirDataset, settings: Settings, domain: str) -> str:
    fields = {"bm25", "title_in_dense", "part_sentences"}
    config = settings.domains[Domain(domain)].model_dump_json(include=fields)
    # code documents carry their symbol (document_chunks): stores indexed without it re-index
    symbols = "|symbols" if domain == Domain.CODE.value else ""
    raw = f"{dataset.fingerprint()}|{settings.embedding_model}|{config}{symbols}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def ensure_indexed(pipeline: Pipeline, dataset: BeirDataset, domain: str) -> dict[str, Any]:
    """Index the corpus unless the store already holds the same corpus with the same analyzer."""
    name, settings = product.domain_settings(pipeline, domain)
    signature = _index_signature(dataset, pipeline.settings, name)
    meta_key = f"eval:{EVAL_TENANT}"
    if pipeline.store.has_collection(settings.collection):
        meta = pipeline.store.read_meta(settings.collection)
        if meta.get(meta_key) == signature:
            # a sweep interrupted while trying another k1 / b leaves those vectors behind
            restore_default(pipeline, name)
            chunks = pipeline.store.count(settings.collection, EVAL_TENANT)
            return {"reused": True, "chunks": chunks, "seconds": 0.0}
        product.delete(pipeline, name, EVAL_TENANT)
    started = time.perf_counter()
    report = index_documents(pipeline, dataset.corpus, domain=name, tenant=EVAL_TENANT)
    # Set only these keys (atomically): other writers may be updating the BM25 statistics.
    # Fresh vectors carry the settings' own k1 / b, so a variant marker an older index left goes.
    pipeline.store.adjust_meta(settings.collection, {}, {meta_key: signature, BM25_MARKER: None})
    seconds = round(time.perf_counter() - started, 1)
    return {"reused": False, "chunks": report.chunks, "seconds": seconds}


def _collapse(doc_ids: Sequence[str], limit: int) -> list[str]:
    seen: dict[str, None] = {}
    for doc_id in doc_ids:
        seen.setdefault(doc_id, None)
        if len(seen) >= limit:
            break
    return list(seen)


def score_mode(
    mode: str,
    pipeline: Pipeline,
    dataset: BeirDataset,
    domain: str,
    chunks_per_doc: float,
    baseline: OkapiBaseline | None = None,
) -> ModeScores:
    """Run every query in one mode and average the metrics (document level)."""
    ndcg, recall, mrr, latencies = [], [], [], []
    note: str | None = None
    depth = math.ceil(RECALL_DEPTH * max(1.0, chunks_per_doc)) + 20
    for query_id, text in dataset.queries.items():
        started = time.perf_counter()
        if mode == BASELINE_MODE:
            assert baseline is not None
            ranked = baseline.rank(text, RECALL_DEPTH)
        else:
            result = rank(pipeline, text, domain=domain, tenant=EVAL_TENANT, limit=depth, mode=mode)
            ranked = _collapse([h.doc_id for h in result.hits], RECALL_DEPTH)
            if mode == "hybrid+rerank" and not result.rerank_applied:
                note = f"rerank not applied: {result.rerank_note}"
        latencies.append((time.perf_counter() - started) * 1000)
        judged = dataset.qrels[query_id]
        ndcg.append(ndcg_at_k(ranked, judged, 10))
        recall.append(recall_at_k(ranked, judged, RECALL_DEPTH))
        mrr.append(mrr_at_k(ranked, judged, 10))
    count = len(ndcg)
    return ModeScores(
        ndcg_at_10=sum(ndcg) / count,
        recall_at_100=sum(recall) / count,
        mrr_at_10=sum(mrr) / count,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        note=note,
    )


def run_eval(
    dataset: BeirDataset,
    settings: Settings,
    *,
    domain: str,
    modes: Sequence[str],
    store_dir: Path | None = None,
) -> dict[str, Any]:
    """Index (or reuse) and score; returns the JSON-ready report."""
    with tempfile.TemporaryDirectory(prefix="retrieval-eval-") as scratch:
        run_settings = settings.model_copy(
            update={
                "store_path": Path(store_dir) if store_dir else Path(scratch),
                "qdrant_url": None,
            }
        )
        pipeline = build_pipeline(run_settings)
        try:
            index_info = ensure_indexed(pipeline, dataset, domain)
            chunks_per_doc = index_info["chunks"] / max(1, len(dataset.corpus))
            baseline = OkapiBaseline(dataset.corpus) if BASELINE_MODE in modes else None
            results = {
                mode: score_mode(
                    mode, pipeline, dataset, domain, chunks_per_doc, baseline
                ).as_json()
                for mode in modes
            }
        finally:
            pipeline.store.close()
    return {
        "dataset": dataset.name,
        "domain": domain,
        "queries": len(dataset.queries),
        "corpus": len(dataset.corpus),
        "index": index_info,
        "modes": results,
    }


def format_table(report: dict[str, Any]) -> str:
    """A plain-text table of the report's modes."""
    lines = [
        f"{report['dataset']} ({report['domain']}): {report['queries']} queries"
        + (f" ({report['split']} part)" if report.get("split", "all") != "all" else "")
        + ", "
        f"{report['corpus']} documents, {report['index']['chunks']} chunks",
        f"{'mode':<15}{'nDCG@10':>9}{'R@100':>8}{'MRR@10':>8}{'p50 ms':>9}{'p95 ms':>9}",
    ]
    notes = []
    for mode, m in report["modes"].items():
        lines.append(
            f"{mode:<15}{m['ndcg@10']:>9.4f}{m['recall@100']:>8.4f}{m['mrr@10']:>8.4f}"
            f"{m['p50_ms']:>9.2f}{m['p95_ms']:>9.2f}"
        )
        if m.get("note"):
            notes.append(f"  {mode}: {m['note']}")
    return "\n".join(lines + notes)


def write_json(report: dict[str, Any], path: Path) -> None:
    """Write the report as pretty JSON."""
    Path(path).write_text(json.dumps(report, indent=2) + "\n")
