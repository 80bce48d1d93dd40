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

    python -m server.evaluation.sweep --domain legal --json eval-results/sweep-legal.json \\
        --markdown eval-results/sweep-legal.md
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from server.errors import RetrievalError
from server.evaluation.adaptive_fusion import ALL_TRIGGERS, AdaptiveFusion, Trigger
from server.evaluation.beir import BeirDataset
from server.evaluation.bm25_variants import encode_variant, restore_default
from server.evaluation.eval_sets import REPO_ROOT, TuningSet, tuning_sets
from server.evaluation.fusion import FusionCheck, fuse
from server.evaluation.metrics import ndcg_at_k, recall_at_k
from server.evaluation.runner import EVAL_TENANT, RECALL_DEPTH, ensure_indexed
from server.evaluation.splits import split_of
from server.evaluation.sweep_table import (
    Row,
    SetRun,
    adaptive_row,
    best_adaptive,
    format_markdown,
    max_regret,
    paired_difference,
    rank_rows,
    static_rows,
)
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import load_embedder, open_store
from server.retrieval.pipeline import RetrievalPipeline
from server.retrieval.store import HybridQuery
from server.settings import Domain, FusionSettings, Settings

logger = logging.getLogger(__name__)

DEFAULT_STORE_ROOT = REPO_ROOT / ".eval-store"
RRF_KS = (1, 2, 5, 10, 60)
WEIGHTS = ((3.0, 1.0), (2.0, 1.0), (1.0, 1.0), (1.0, 2.0), (1.0, 3.0), (1.0, 5.0), (1.0, 10.0))
CANDIDATES = (50, 100, 200)
K1S = (0.6, 0.9, 1.2, 1.5)
BS = (0.4, 0.75)
ROUTERS: tuple[tuple[frozenset[Trigger], int], ...] = (
    (ALL_TRIGGERS, 0),
    (ALL_TRIGGERS, 3),
    (frozenset({"citation"}), 0),
    (frozenset({"identifier"}), 0),
    (frozenset({"quoted"}), 0),
)
"""Adaptive routing rules tried: (features that make a query keyword-like, short_words)."""
TOP_ROWS = 12


def fusion_label(fusion: FusionSettings) -> str:
    """``dbsf`` or ``rrf(k=1,1:5)`` (dense:sparse weights)."""
    if fusion.method == "dbsf":
        return "dbsf"
    return f"rrf(k={fusion.rrf_k},{fusion.dense_weight:g}:{fusion.sparse_weight:g})"


@dataclass(frozen=True)
class IndexVariant:
    """What the stored vectors carry: part vectors or not, and the BM25 k1 / b."""

    parts: bool
    k1: float
    b: float


@dataclass(frozen=True)
class StaticConfig:
    """One query-time configuration on one index variant."""

    index: IndexVariant
    candidates: int
    fusion: FusionSettings

    @property
    def label(self) -> str:
        """Stable, readable key: ``dbsf c100 k1=0.9 b=0.4 parts``."""
        parts = " parts" if self.index.parts else ""
        return (
            f"{fusion_label(self.fusion)} c{self.candidates} "
            f"k1={self.index.k1:g} b={self.index.b:g}{parts}"
        )

    def as_json(self) -> dict[str, Any]:
        """The configuration for the report."""
        return {
            "fusion": self.fusion.model_dump(),
            "candidates": self.candidates,
            "k1": self.index.k1,
            "b": self.index.b,
            "part_vectors": self.index.parts,
        }


@dataclass(frozen=True)
class Grid:
    """The configurations one sweep scores."""

    fusions: tuple[FusionSettings, ...]
    candidates: tuple[int, ...]
    bm25: tuple[tuple[float, float], ...]
    parts: tuple[bool, ...]

    def configs(self) -> list[StaticConfig]:
        """Every combination, index variants outermost."""
        return [
            StaticConfig(IndexVariant(parts, k1, b), c, fusion)
            for parts in self.parts
            for k1, b in self.bm25
            for c in self.candidates
            for fusion in self.fusions
        ]

    def size(self) -> int:
        """Number of static configurations."""
        return len(self.fusions) * len(self.candidates) * len(self.bm25) * len(self.parts)


def _unique(values: Sequence[Any]) -> tuple[Any, ...]:
    unique: list[Any] = []
    for value in values:  # FusionSettings are comparable but not hashable
        if value not in unique:
            unique.append(value)
    return tuple(unique)


def default_config(settings: Settings, domain: Domain) -> StaticConfig:
    """Today's default of the domain as a grid point (from the effective settings)."""
    ds = settings.domains[domain]
    fusion = ds.fusion
    if fusion.method == "dbsf":  # DBSF ignores the RRF fields: normalise them for the key
        fusion = FusionSettings(method="dbsf")
    return StaticConfig(
        IndexVariant(ds.part_sentences > 0, ds.bm25.k1, ds.bm25.b), ds.candidates, fusion
    )


def default_grid(settings: Settings, domain: Domain, *, quick: bool = False) -> Grid:
    """The standard grid, always containing the domain's current default.

    ``quick``: one BM25 variant (the default) and one depth, for a first look.
    """
    today = default_config(settings, domain)
    fusions = [FusionSettings(method="dbsf")] + [
        FusionSettings(method="rrf", rrf_k=k, dense_weight=w[0], sparse_weight=w[1])
        for k in RRF_KS
        for w in WEIGHTS
    ]
    candidates: list[int] = [today.candidates] if quick else [*CANDIDATES, today.candidates]
    bm25 = [(today.index.k1, today.index.b)]
    if not quick:
        bm25 += [(k1, b) for k1 in K1S for b in BS]
    parts = (True, False) if today.index.parts else (False,)
    return Grid(
        _unique([*fusions, today.fusion]), _unique(sorted(candidates)), _unique(bm25), parts
    )


@dataclass
class StageLists:
    """What the store returned for one query at one depth: both stages and its own fusion."""

    dense: list[tuple[str, float]]
    sparse: list[tuple[str, float]]
    final: list[str]


@dataclass
class SetReport:
    """What the report says about one set besides its scores."""

    tuning_set: TuningSet
    queries: int
    tune: int
    heldout: int
    corpus: int
    index: dict[str, dict[str, Any]] = field(default_factory=dict)
    fusion_check: FusionCheck = field(default_factory=FusionCheck)
    keyword_share: dict[str, float] = field(default_factory=dict)
    """Router name -> share of the set's queries it sends to the keyword setting."""

    def as_json(self) -> dict[str, Any]:
        """For the report."""
        return {
            "name": self.tuning_set.name,
            "style": self.tuning_set.style,
            "directory": str(self.tuning_set.directory),
            "queries": self.queries,
            "tune": self.tune,
            "heldout": self.heldout,
            "corpus": self.corpus,
            "index": self.index,
            "fusion_check": self.fusion_check.as_json(),
            "keyword_routed_share": {k: round(v, 3) for k, v in self.keyword_share.items()},
        }


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
    pipeline: RetrievalPipeline,
    domain: Domain,
    dense: Sequence[list[float]],
    sparse: Sequence[Any],
    candidates: int,
    fusions: Sequence[FusionSettings],
) -> list[StageLists]:
    """One store query per query; the verified fusion rotates through the grid's fusions."""
    _, settings = pipeline.domain_settings(domain)
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


def _doc_ids(pipeline: RetrievalPipeline, collection: str) -> dict[str, str]:
    doc_of: dict[str, str] = {}
    offset: str | int | None = None
    while True:
        page, offset = pipeline.store.scroll(collection, EVAL_TENANT, limit=1024, offset=offset)
        doc_of.update((p.id, str(p.payload["doc_id"])) for p in page)
        if offset is None:
            return doc_of


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
        pipeline = RetrievalPipeline(settings, open_store(settings), embedder, None)
        try:
            report.index["parts" if parts else "no-parts"] = ensure_indexed(
                pipeline, dataset, domain.value
            ) | {"store": str(store)}
            collection = settings.domains[domain].collection
            doc_of = _doc_ids(pipeline, collection)
            encoder = pipeline.sparse_encoder(domain)
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
                            ndcg, recall = [], []
                            for i, (qid, stages) in enumerate(zip(query_ids, lists, strict=True)):
                                fused = fuse(stages.dense, stages.sparse, fusion)
                                judged = dataset.qrels[qid]
                                if fusion == grid.fusions[i % len(grid.fusions)]:
                                    report.fusion_check.add(
                                        fused,
                                        stages.final,
                                        ndcg_at_k(_collapse(fused[:10], doc_of, 10), judged, 10),
                                        ndcg_at_k(
                                            _collapse(stages.final[:10], doc_of, 10), judged, 10
                                        ),
                                    )
                                ranked = _collapse(fused, doc_of, RECALL_DEPTH)
                                ndcg.append(ndcg_at_k(ranked, judged, 10))
                                recall.append(recall_at_k(ranked, judged, RECALL_DEPTH))
                            run.ndcg[config.label] = np.array(ndcg)
                            run.recall[config.label] = np.array(recall)
                        logger.info("%s: %.1f s", desc, time.perf_counter() - started)
            finally:
                restore_default(pipeline, domain.value)
        finally:
            pipeline.store.close()
    return run, report


@dataclass
class SweepResult:
    """Everything the report needs."""

    domain: Domain
    grid: Grid
    today: StaticConfig
    reports: list[SetReport]
    ranked: list[Row]
    static_count: int
    adaptive: list[Row]
    runs: list[SetRun]
    configs: dict[str, dict[str, Any]]

    def row(self, label: str) -> Row:
        """The row of one label."""
        return next(r for r in self.ranked if r.label == label)

    def best(self, *, adaptive: bool | None = None) -> Row:
        """The winner (of only static or only adaptive rows when asked)."""
        return next(
            r for r in self.ranked if adaptive is None or bool(r.config.get("adaptive")) == adaptive
        )

    def fusion_key(self, row: Row) -> str:
        """The row's label without depth: rows differing only in candidates share it."""
        return " ".join(w for w in row.label.split() if not re.fullmatch(r"c\d+", w))

    def key_rows(self) -> dict[str, Row]:
        """The rows the README discusses, by role (a row may hold several roles; first wins).

        The runner-up is the best row whose setting differs from the winner's by more than the
        candidate depth (the next rows usually repeat the winner at another depth).
        """
        winner = self.ranked[0]
        runner_up = next(
            (r for r in self.ranked[1:] if self.fusion_key(r) != self.fusion_key(winner)), winner
        )
        roles: dict[str, Row] = {"winner": winner, "runner-up": runner_up}
        roles["best static"] = self.best(adaptive=False)
        if self.adaptive:
            roles["best adaptive"] = self.best(adaptive=True)
        roles["today's default"] = self.row(self.today.label)
        dbsf = StaticConfig(self.today.index, self.today.candidates, FusionSettings(method="dbsf"))
        roles["DBSF, today's depth and BM25"] = self.row(dbsf.label)
        static = [r for r in self.ranked if not r.config.get("adaptive")]
        regret = max_regret(static)
        roles["min-max regret (static)"] = min(static, key=lambda r: (regret[r.label], r.label))
        for run in self.runs:
            best = max(static, key=lambda r: (r.scores[run.name]["tune"].ndcg, r.label))
            roles[f"best static on {run.name} alone"] = best
        return roles

    def paired(
        self, label: str, against: str, part: str = "heldout"
    ) -> dict[str, dict[str, float]]:
        """nDCG@10 of ``label`` minus ``against`` per set on ``part``: mean and standard error."""
        out = {}
        for run in self.runs:
            a, b = self._per_query(run, label), self._per_query(run, against)
            mean, se = paired_difference(a, b, run.mask(part))
            out[run.name] = {"mean": round(mean, 4), "se": round(se, 4)}
        return out

    def recommendation(self) -> dict[str, Any]:
        """The winner, unless it is not clearly better than today's default on the tune parts.

        Guard against choosing on noise (the worst set can be flat across the grid, so its
        argmax is a coin toss): the winner replaces today's default only when, on the set where
        today's default scores worst, its paired tune-part gain exceeds two standard errors.
        Held-out parts play no part in this.
        """
        winner, today = self.ranked[0], self.row(self.today.label)
        worst_set = min(today.scores, key=lambda n: today.scores[n]["tune"].ndcg)
        gain = self.paired(winner.label, today.label, "tune")[worst_set]
        clear = winner.label != today.label and gain["mean"] > 2 * gain["se"] > 0
        return {
            "label": (winner if clear else today).label,
            "changes_default": clear,
            "worst_set_of_default": worst_set,
            "winner_tune_gain_there": gain,
        }

    def _per_query(self, run: SetRun, label: str) -> Any:
        if label in run.ndcg:
            return run.ndcg[label]
        row = self.row(label)
        keyword, natural = (
            StaticConfig(
                IndexVariant(c["part_vectors"], c["k1"], c["b"]),
                c["candidates"],
                FusionSettings(**c["fusion"]),
            ).label
            for c in (row.config["keyword"], row.config["natural"])
        )
        route = run.keyword[str(row.config["router"])]
        return np.where(route, run.ndcg[keyword], run.ndcg[natural])

    def as_json(self) -> dict[str, Any]:
        """The full report: sets, grid, the selection (key rows), every row ranked."""
        rank = {r.label: i + 1 for i, r in enumerate(self.ranked)}
        regret = max_regret([r for r in self.ranked if not r.config.get("adaptive")])
        selection = {}
        for role, row in self.key_rows().items():
            selection[role] = row.as_json() | {
                "rank": rank[row.label],
                "max_regret_tune": round(regret[row.label], 4) if row.label in regret else None,
                "tune_delta_vs_default": self.paired(row.label, self.today.label, "tune"),
                "heldout_delta_vs_default": self.paired(row.label, self.today.label),
            }
        return {
            "domain": self.domain.value,
            "rule": "best worst-set tune-part nDCG@10 (tie: mean tune); it replaces today's "
            "default only with a paired tune gain > 2 SE on the default's worst set; held-out "
            "only reported",
            "sets": [r.as_json() for r in self.reports],
            "grid": {
                "fusions": [fusion_label(f) for f in self.grid.fusions],
                "candidates": list(self.grid.candidates),
                "bm25": [list(v) for v in self.grid.bm25],
                "part_vectors": list(self.grid.parts),
                "static_configs": self.static_count,
                "adaptive_routers": [_router(t, w).name for t, w in ROUTERS],
                "adaptive_rows": len(self.adaptive),
            },
            "recommendation": self.recommendation(),
            "selection": selection,
            "rows": [r.as_json() for r in self.ranked],
        }

    def markdown(self, top: int = TOP_ROWS) -> str:
        """Three tables: the key rows by role, the top static rows, the top adaptive rows."""
        names = [r.tuning_set.name for r in self.reports]
        rank = {r.label: i + 1 for i, r in enumerate(self.ranked)}
        key = self.key_rows()
        roles: dict[str, list[str]] = {}
        for role, row in key.items():
            roles.setdefault(row.label, []).append(role)
        marks = {label: f"#{rank[label]}, " + "; ".join(r) for label, r in roles.items()}
        unique = list({r.label: r for r in key.values()}.values())
        static = [r for r in self.ranked if not r.config.get("adaptive")][:top]
        adaptive = [r for r in self.ranked if r.config.get("adaptive")][: max(1, top // 2)]
        rank_marks = {r.label: marks.get(r.label, f"#{rank[r.label]}") for r in self.ranked}
        rec = self.recommendation()
        gain = rec["winner_tune_gain_there"]
        verdict = (
            f"Recommendation: `{rec['label']}` (the winner; its tune gain over today's default "
            f"on {rec['worst_set_of_default']}: {gain['mean']:+.3f} +- {gain['se']:.3f})"
            if rec["changes_default"]
            else f"Recommendation: keep today's default `{rec['label']}` (the winner's tune gain "
            f"on {rec['worst_set_of_default']}, {gain['mean']:+.3f} +- {gain['se']:.3f}, is "
            "within two standard errors)"
        )
        parts = [
            verdict,
            "",
            f"Selected rows ({self.domain.value}; nDCG@10 tune / held-out, Recall@100 in brackets)",
            "",
            format_markdown(unique, names, marks),
            "",
            f"Top {len(static)} static configurations of {self.static_count}",
            "",
            format_markdown(static, names, rank_marks),
        ]
        if adaptive:
            parts += [
                "",
                f"Top {len(adaptive)} query-adaptive configurations",
                "",
                format_markdown(adaptive, names, rank_marks),
            ]
        return "\n".join(parts)


def _router(triggers: frozenset[Trigger], short_words: int) -> AdaptiveFusion:
    """A routing rule (its two fusion settings are chosen by the sweep, not here)."""
    return AdaptiveFusion(FusionSettings(), FusionSettings(), short_words, triggers)


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


def rank_sweep(
    domain: Domain,
    grid: Grid,
    settings: Settings,
    runs: list[SetRun],
    reports: list[SetReport],
) -> SweepResult:
    """Rows of every static and (per family) best adaptive configuration, ranked by the rule."""
    configs = {c.label: c.as_json() for c in grid.configs()}
    rows = static_rows(runs, configs)
    routers = [_router(triggers, short) for triggers, short in ROUTERS]
    for run, report in zip(runs, reports, strict=True):
        if not getattr(run, "texts", None):  # scores kept before the texts were
            queries = report.tuning_set.load().queries
            run.texts = [queries[q] for q in run.query_ids]
        report.keyword_share = {}
        for router in routers:
            route = [router.route(text) == "keyword" for text in run.texts]
            run.keyword[router.name] = np.array(route, dtype=bool)
            report.keyword_share[router.name] = float(np.mean(route))
    adaptive = []
    for parts in grid.parts:
        for k1, b in grid.bm25:
            for c in grid.candidates:
                labels = [
                    StaticConfig(IndexVariant(parts, k1, b), c, f).label for f in grid.fusions
                ]
                for router in routers:
                    choice = best_adaptive(runs, labels, router.name)
                    if choice is not None:
                        adaptive.append(adaptive_row(choice, runs, configs))
    ranked = rank_rows(rows + adaptive)
    today = default_config(settings, domain)
    return SweepResult(domain, grid, today, reports, ranked, len(rows), adaptive, runs, configs)


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


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: sweep one domain and write the JSON report and a markdown table."""
    parser = argparse.ArgumentParser(prog="python -m server.evaluation.sweep", description=__doc__)
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
        args.json.write_text(json.dumps(result.as_json(), indent=1) + "\n")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    # run under the importable module name, so the kept scores unpickle outside this process
    from server.evaluation import sweep as _sweep

    sys.exit(_sweep.main())
